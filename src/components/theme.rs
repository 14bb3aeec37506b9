//! Keeps `<html data-theme>` in step with the theme stored in NATS, in every tab.

use leptos::prelude::*;

use crate::model::{known_theme, CONFIG_BUCKET};

/// The theme this tab shows (what `<html data-theme>` says).
#[derive(Clone, Copy)]
pub struct AppliedTheme(pub RwSignal<String>);

/// The last theme this browser showed, so a reload starts in it instead of flashing the default.
const REMEMBERED: &str = "via.theme";

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

fn apply(theme: &str) {
    if let Some(root) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element())
    {
        let _ = root.set_attribute("data-theme", theme);
    }
    if let Some(s) = storage() {
        let _ = s.set_item(REMEMBERED, theme);
    }
}

#[component]
pub fn ThemeSync() -> impl IntoView {
    let initial = storage()
        .and_then(|s| s.get_item(REMEMBERED).ok().flatten())
        .filter(|t| known_theme(t))
        .unwrap_or_else(|| "light".to_owned());
    apply(&initial);
    let applied = RwSignal::new(initial);
    provide_context(AppliedTheme(applied));
    let theme = leptos_nats::use_kv_key(CONFIG_BUCKET, "theme");
    Effect::new(move |_| {
        let stored = theme
            .entry
            .get()
            .and_then(|e| e.text().map(|t| t.trim().to_owned()));
        // An unknown name written by another tool leaves the tab as it was.
        if let Some(name) = stored.filter(|n| known_theme(n)) {
            apply(&name);
            applied.set(name);
        }
    });
}

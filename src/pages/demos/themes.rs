//! `/themes`: one theme for every tab, stored in KV `via_config` / `theme`.

use leptos::prelude::*;
use leptos_nats::{use_kv_key, use_nats};

use crate::components::theme::AppliedTheme;
use crate::model::{CONFIG_BUCKET, THEMES};

#[component]
pub fn ThemesPage() -> impl IntoView {
    let theme = use_kv_key(CONFIG_BUCKET, "theme");
    let applied = expect_context::<AppliedTheme>().0;
    let live = use_nats().status;
    let stored = move || {
        theme
            .entry
            .get()
            .and_then(|e| e.text().map(|t| t.trim().to_owned()))
    };
    view! {
        <section class="page-head">
            <h1>"Themes"</h1>
            <p class="lede">
                "Pick a theme: it is written to KV " <code>"via_config / theme"</code>
                " and every open tab switches at once."
            </p>
        </section>
        <section class="card">
            <div class="theme-grid">
                {THEMES
                    .into_iter()
                    .map(|name| {
                        view! {
                            <button
                                class="theme-option"
                                class:selected=move || applied.get() == name
                                data-testid=format!("theme-option-{name}")
                                data-theme-preview=name
                                aria-pressed=move || (applied.get() == name).to_string()
                                on:click=move |_| theme.set(name)
                            >
                                <span class="swatch" aria-hidden="true"></span>
                                <span>{name}</span>
                            </button>
                        }
                    })
                    .collect_view()}
            </div>
            <dl class="facts">
                <dt>"This tab"</dt>
                <dd data-testid="theme-applied">{move || applied.get()}</dd>
                <dt>"Stored in NATS"</dt>
                <dd data-testid="theme-stored">
                    {move || {
                        stored()
                            .unwrap_or_else(|| {
                                let refused = theme.error.with(Option::is_some)
                                    && live.with(|s| s.is_connected());
                                match (theme.loaded.get(), refused) {
                                    (true, _) => "(not set)",
                                    (false, true) => "(not read: see below)",
                                    (false, false) => "…",
                                }
                                    .to_owned()
                            })
                    }}
                </dd>
            </dl>
            <Show when=move || theme.error.get().is_some()>
                <p class="error" data-testid="theme-error">{move || theme.error.get()}</p>
            </Show>
        </section>
    }
}

//! Widgets shared by the pages.

pub mod agent;
pub mod busy_focus;
pub mod clock;
pub mod directory;
pub mod field;
pub mod header;
pub mod live_bucket;
pub mod mqtt_ws;
pub mod pacer;
pub mod theme;
pub mod toasts;
pub mod visibility;

use leptos::prelude::{Effect, Get};
use leptos::tachys::html::element::ElementType;

/// Gives `node` the focus as soon as it is mounted (a dialog's first field, a question's safe
/// answer), and each time it is mounted again.
pub fn focus_when_mounted<E>(node: leptos::prelude::NodeRef<E>)
where
    E: ElementType + 'static,
    E::Output: wasm_bindgen::JsCast + Clone + AsRef<web_sys::HtmlElement> + 'static,
{
    Effect::new(move |_| {
        if let Some(element) = node.get() {
            let element: &web_sys::HtmlElement = element.as_ref();
            let _ = element.focus();
        }
    });
}

thread_local! {
    /// When a click that opens a part asked for it ([`reveal_next`]), in ms since the epoch;
    /// taken by the part when it is mounted.
    static REVEAL: std::cell::Cell<Option<f64>> = const { std::cell::Cell::new(None) };
}

/// Asks the part mounted next with [`reveal_when_mounted`] (within a second) to come into sight:
/// called by what the user clicked to open it (a row of a list), not by what else mounts it again
/// (a new connection, a form's answer, the address).
pub fn reveal_next() {
    REVEAL.with(|r| r.set(Some(js_sys::Date::now())));
}

/// Brings what the user just opened (a stream's, a bucket's, a key's details) into sight below
/// the header, and gives its `heading` (with `tabindex="-1"`) the focus: opened from a row far
/// up the page, nothing that moved was in sight, and the keyboard stayed in the list. Only when
/// asked by [`reveal_next`]; scrolls only when the part starts out of sight or in the lower half
/// of the screen.
pub fn reveal_when_mounted(heading: leptos::prelude::NodeRef<leptos::html::H2>) {
    Effect::new(move |_| {
        let Some(heading) = heading.get() else {
            return;
        };
        let asked = REVEAL.with(|r| r.take());
        if !asked.is_some_and(|at| js_sys::Date::now() - at < 1000.0) {
            return;
        }
        // Once the part is laid out.
        leptos::prelude::request_animation_frame(move || {
            let Some(window) = web_sys::window() else {
                return;
            };
            let options = web_sys::FocusOptions::new();
            options.set_prevent_scroll(true);
            let _ = heading.focus_with_options(&options);
            let part: web_sys::Element = match heading.closest("section") {
                Ok(Some(section)) => section,
                _ => heading.into(),
            };
            let top = part.get_bounding_client_rect().top();
            // The header stays at the top of a wide screen (sticky): the part goes below it. On a
            // phone it scrolls away with the page.
            let below = window
                .document()
                .and_then(|d| d.query_selector("header.topbar").ok().flatten())
                .filter(|h| {
                    window
                        .get_computed_style(h)
                        .ok()
                        .flatten()
                        .and_then(|style| style.get_property_value("position").ok())
                        .is_some_and(|p| p == "sticky")
                })
                .map_or(0.0, |h| h.get_bounding_client_rect().bottom().max(0.0));
            let height = window
                .inner_height()
                .ok()
                .and_then(|h| h.as_f64())
                .unwrap_or(0.0);
            if top < below || top > height / 2.0 {
                window.scroll_by_with_x_and_y(0.0, top - below - 12.0);
            }
        });
    });
}

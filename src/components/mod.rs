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

/// Brings what the user just opened (a stream's, a bucket's, a key's details) into sight below
/// the header, and gives its `heading` (with `tabindex="-1"`) the focus: opened from a row far
/// up the page, nothing that moved was in sight, and the keyboard stayed in the list. Scrolls
/// only when the part starts out of sight or in the lower half of the screen. Not while the
/// focus is in a form: what a form wrote (a key put, a stream created) opens without taking the
/// user away from it.
pub fn reveal_when_mounted(heading: leptos::prelude::NodeRef<leptos::html::H2>) {
    Effect::new(move |_| {
        let Some(heading) = heading.get() else {
            return;
        };
        // Once the part is laid out.
        leptos::prelude::request_animation_frame(move || {
            let Some(window) = web_sys::window() else {
                return;
            };
            let in_form = window
                .document()
                .and_then(|d| d.active_element())
                .is_some_and(|e| matches!(e.closest("form"), Ok(Some(_))));
            if in_form {
                return;
            }
            let options = web_sys::FocusOptions::new();
            options.set_prevent_scroll(true);
            let _ = heading.focus_with_options(&options);
            let part: web_sys::Element = match heading.closest("section") {
                Ok(Some(section)) => section,
                _ => heading.into(),
            };
            let top = part.get_bounding_client_rect().top();
            // The header stays at the top of a wide screen: the part goes below it.
            let below = window
                .document()
                .and_then(|d| d.query_selector("header.topbar").ok().flatten())
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

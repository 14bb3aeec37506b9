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

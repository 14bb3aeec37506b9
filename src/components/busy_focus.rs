//! Keyboard focus through a button's busy time. A page disables a button while its action runs
//! (Put, Send request, Run…); the browser then takes the focus from it and leaves it on the page's
//! body, so the next Tab starts over at the header. Here the focus is given back when the button is
//! enabled again, unless the user has focused something else meanwhile.

use std::cell::RefCell;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

thread_local! {
    /// The button that had the focus when it was disabled.
    static WAITING: RefCell<Option<web_sys::Element>> = const { RefCell::new(None) };
}

/// Watches every `disabled` attribute of the page, for as long as the page lives. Call once.
pub fn keep_focus_through_busy_buttons() {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    let Some(body) = document.body() else {
        return;
    };
    // Chromium takes the focus away at once, with a `focusout` from the button already disabled.
    let on_focusout = Closure::<dyn FnMut(web_sys::FocusEvent)>::new(|ev: web_sys::FocusEvent| {
        let Some(element) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        else {
            return;
        };
        if ev.related_target().is_none() && element.has_attribute("disabled") {
            WAITING.with(|w| *w.borrow_mut() = Some(element));
        }
    });
    if document
        .add_event_listener_with_callback_and_bool(
            "focusout",
            on_focusout.as_ref().unchecked_ref(),
            true,
        )
        .is_ok()
    {
        on_focusout.forget();
    }
    // The user focused something else meanwhile: that is where the focus stays, even if it
    // falls to the body again before the button is enabled.
    let on_focusin = Closure::<dyn FnMut(web_sys::FocusEvent)>::new(|_: web_sys::FocusEvent| {
        WAITING.with(|w| w.borrow_mut().take());
    });
    if document
        .add_event_listener_with_callback_and_bool(
            "focusin",
            on_focusin.as_ref().unchecked_ref(),
            true,
        )
        .is_ok()
    {
        on_focusin.forget();
    }
    let on_change = Closure::<dyn FnMut(js_sys::Array)>::new(move |records: js_sys::Array| {
        for record in records.iter() {
            let record: web_sys::MutationRecord = record.unchecked_into();
            let Some(element) = record
                .target()
                .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            else {
                continue;
            };
            changed(&document, element);
        }
    });
    let Ok(observer) = web_sys::MutationObserver::new(on_change.as_ref().unchecked_ref()) else {
        return;
    };
    let init = web_sys::MutationObserverInit::new();
    init.set_attributes(true);
    init.set_subtree(true);
    init.set_attribute_filter(&js_sys::Array::of1(&"disabled".into()));
    if observer.observe_with_options(&body, &init).is_ok() {
        // The page's own: it observes until the page goes.
        on_change.forget();
    }
}

/// `element`'s `disabled` attribute was set or removed.
fn changed(document: &web_sys::Document, element: web_sys::Element) {
    // (Another browser may move the focus only later: then it is still on the button here.)
    let focused = document.active_element();
    if element.has_attribute("disabled") {
        if focused.as_ref() == Some(&element) {
            WAITING.with(|w| *w.borrow_mut() = Some(element));
        }
        return;
    }
    let waited = WAITING.with(|w| {
        let mut w = w.borrow_mut();
        let is_it = w.as_ref() == Some(&element);
        if is_it {
            *w = None;
        }
        is_it
    });
    // Lost: on the body (or nowhere), not on what the user chose meanwhile.
    let lost = focused.is_none_or(|f| document.body().is_some_and(|b| &f == b.as_ref()));
    if waited && lost && element.is_connected() {
        if let Some(element) = element.dyn_ref::<web_sys::HtmlElement>() {
            // Where the user scrolled meanwhile (to watch the action's output) stays on screen.
            let options = web_sys::FocusOptions::new();
            options.set_prevent_scroll(true);
            let _ = element.focus_with_options(&options);
        }
    }
}

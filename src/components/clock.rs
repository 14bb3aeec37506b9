//! The wall clock as a signal (uptimes, heartbeat ages) and times of day for display.

use std::time::Duration;

use leptos::prelude::*;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Milliseconds on the page's monotonic clock (`performance.now()`), for durations: the wall
/// clock ([`now_ms`]) counts whole milliseconds and moves when the system's clock is set (back
/// by an hour, a pacer waiting for "a frame after the last draw" would wait an hour).
pub fn monotonic_ms() -> f64 {
    thread_local! {
        static PERFORMANCE: Option<web_sys::Performance> =
            web_sys::window().and_then(|w| w.performance());
    }
    PERFORMANCE.with(|p| p.as_ref().map_or_else(js_sys::Date::now, |p| p.now()))
}

/// Now, updated every `every` for as long as the calling component lives.
pub fn use_now(every: Duration) -> ReadSignal<f64> {
    let (now, set_now) = signal(now_ms());
    if let Ok(handle) = set_interval_with_handle(move || set_now.set(now_ms()), every) {
        on_cleanup(move || handle.clear());
    }
    now
}

/// `HH:MM:SS` in the viewer's time zone; `.mmm` too with `millis`.
pub fn time_of_day(ms: f64, millis: bool) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms));
    if date.get_time().is_nan() {
        return String::new();
    }
    let hms = format!(
        "{:02}:{:02}:{:02}",
        date.get_hours(),
        date.get_minutes(),
        date.get_seconds()
    );
    if millis {
        format!("{hms}.{:03}", date.get_milliseconds())
    } else {
        hms
    }
}

/// [`time_of_day`] for a time of today (the viewer's), `YYYY-MM-DD HH:MM:SS` for another day:
/// a value written last week does not read as today's.
pub fn date_and_time(ms: f64, millis: bool) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms));
    if date.get_time().is_nan() {
        return String::new();
    }
    let today = js_sys::Date::new_0();
    let day = (date.get_full_year(), date.get_month(), date.get_date());
    let time = time_of_day(ms, millis);
    if day == (today.get_full_year(), today.get_month(), today.get_date()) {
        time
    } else {
        format!("{:04}-{:02}-{:02} {time}", day.0, day.1 + 1, day.2)
    }
}

//! MQTT ingress: nats-server's MQTT listener turns a publish to the MQTT topic `device/temp` into a
//! NATS message on `device.temp`. The card subscribes to `device.temp` and draws the last 60 s of
//! readings, the latest exactly as sent; they come from the native `via-sensor`, any MQTT client,
//! or this tab itself: the in-browser sensor publishes over MQTT over WebSocket
//! (`components/mqtt_ws.rs`) to the same WebSocket port as NATS, path `/mqtt`. A number no
//! thermometer reads ([`plausible`]: a sensor's error code such as 99999) is shown as sent but not
//! charted, where it would flatten every other reading into a line at the bottom.
//!
//! nats-server 2.9 stops (a crash) when MQTT over WebSocket reaches it without an mqtt block in its
//! configuration, which no client can read: the card says so for those servers until this tab's
//! sensor has connected to this one, then that it is safe.

use std::time::Duration;

use futures::channel::oneshot;
use futures::FutureExt;
use leptos::prelude::*;
use leptos_nats::spawn_while_mounted;
use leptos_router::components::A;
use nats_ws::{Client, ReconnectPolicy, Status};
use via_playground::sensor::{self, Reading};

use super::steps::{CardTasks, StepList, StepLog};
use crate::components::clock::{monotonic_ms, now_ms, use_now};
use crate::components::mqtt_ws::{mqtt_url, ConnectOptions, MqttError, MqttWs};
use crate::components::pacer::{Paced, Pacer};
use crate::components::visibility::use_document_visible;
use crate::session::{random_hex, Settings};

/// The chart's time span.
const WINDOW_MS: f64 = 60_000.0;
/// At most this many readings are kept (a sensor far faster than 1/s only thins the line).
const MAX_SAMPLES: usize = 600;
/// The in-browser sensor publishes this often.
const SENSOR_EVERY: Duration = Duration::from_secs(1);
/// How long a connection's readings may go without one coming back over NATS before the card
/// says so.
const NO_READING_BACK_MS: f64 = 5000.0;
/// Its MQTT keepalive: nats-server closes a connection silent for 1.5 × this. A tab hidden for
/// a few minutes runs its timers once a minute (Chromium's intensive throttling), so a reading,
/// or a PINGREQ, may be a minute apart: 30 s closed the hidden sensor every minute.
const KEEP_ALIVE: Duration = Duration::from_secs(120);
/// After a lost connection it tries again after this long, doubling up to [`RECONNECT_MAX`].
const RECONNECT_FIRST: Duration = Duration::from_millis(500);
const RECONNECT_MAX: Duration = Duration::from_secs(5);
/// A connection that lasted this long starts the waits over; one lost sooner counts on.
const STABLE_AFTER: Duration = Duration::from_secs(10);
/// The chart's drawing box (the SVG stretches it to the card's width).
const CHART_W: f64 = 600.0;
const CHART_H: f64 = 160.0;
/// An unreadable payload is shown cut at this many characters.
const SHOWN_CHARS: usize = 80;
/// Readings outside are taken for a sensor's error codes (99999, 32767, 65535, −999), not
/// temperatures: nothing is colder than absolute zero, and a device's sensor reads far below
/// 1000 °C.
const PLAUSIBLE: std::ops::RangeInclusive<f64> = -273.15..=1000.0;

/// Whether `value` could be a temperature (see [`PLAUSIBLE`]); only those are charted.
pub fn plausible(value: f64) -> bool {
    PLAUSIBLE.contains(&value)
}

/// One reading as it arrived: when (ms since the epoch) and its value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub at_ms: f64,
    pub value: f64,
}

/// Adds `sample` and drops what left the window (older than [`WINDOW_MS`] before it) or exceeds
/// [`MAX_SAMPLES`].
pub fn add_sample(samples: &mut Vec<Sample>, sample: Sample) {
    samples.push(sample);
    samples.retain(|s| sample.at_ms - s.at_ms <= WINDOW_MS);
    let excess = samples.len().saturating_sub(MAX_SAMPLES);
    samples.drain(..excess);
}

/// The readings within the window ending at `now`.
pub fn in_window(samples: &[Sample], now: f64) -> Vec<Sample> {
    samples
        .iter()
        .copied()
        .filter(|s| now - s.at_ms <= WINDOW_MS)
        .collect()
}

/// The value axis: from a bit below the lowest to a bit above the highest reading, at least 1°
/// tall so that a steady sensor draws a steady line in the middle rather than noise.
pub fn value_range(samples: &[Sample]) -> (f64, f64) {
    let (lo, hi) = samples
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), s| {
            (lo.min(s.value), hi.max(s.value))
        });
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    // In halves: `hi - lo` of two readings near ±f64::MAX is infinite; and within f64, which
    // readings bunched near one end would pass with the margin.
    let mid = lo / 2.0 + hi / 2.0;
    let half = ((hi / 2.0 - lo / 2.0) * 1.1).max(0.5);
    ((mid - half).max(f64::MIN), (mid + half).min(f64::MAX))
}

/// The polyline points of `samples` in a `width` × `height` box: time from `now` − 60 s (left)
/// to `now` (right), value bottom to top over `range`.
pub fn chart_points(
    samples: &[Sample],
    now: f64,
    range: (f64, f64),
    width: f64,
    height: f64,
) -> String {
    samples
        .iter()
        .map(|s| {
            let x = (width * (1.0 - (now - s.at_ms) / WINDOW_MS)).clamp(0.0, width);
            let y = height * (1.0 - height_in(s.value, range));
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where `value` sits in `range`, from 0 (bottom) to 1 (top); in halves, as [`value_range`].
pub fn height_in(value: f64, (lo, hi): (f64, f64)) -> f64 {
    ((value / 2.0 - lo / 2.0) / (hi / 2.0 - lo / 2.0).max(f64::EPSILON)).clamp(0.0, 1.0)
}

/// A temperature for a label, with `decimals`: in scientific notation past a billion, where
/// fixed notation would be hundreds of digits long.
pub fn degrees(value: f64, decimals: usize) -> String {
    match value.abs() < 1e9 {
        true => format!("{value:.decimals$}"),
        false => format!("{value:.decimals$e}"),
    }
}

/// A payload that is not a reading, as text, cut at [`SHOWN_CHARS`].
pub fn unreadable_text(payload: &[u8]) -> String {
    crate::model::clip_payload(payload, SHOWN_CHARS)
}

/// Whether a server of `version` crashes rather than refuse MQTT over WebSocket while it has no
/// mqtt block: nats-server 2.9 (2.9.10 measured; 2.15.1 refuses the upgrade with a 404).
pub fn crashes_without_mqtt(version: &str) -> bool {
    let mut parts = version.trim().trim_start_matches('v').split('.');
    let mut next = || parts.next().and_then(|p| p.parse::<u32>().ok());
    match (next(), next()) {
        (Some(major), Some(minor)) => (major, minor) < (2, 10),
        _ => false,
    }
}

/// How this tab saw the server it is connected to serve MQTT: its sensor connected to it. (A
/// reading with the server's `Nmqtt-Pub` header proves nothing: it may have come through another
/// server, a leaf node's hub say, and any client can write the header.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttSeen {
    /// This tab's sensor connected to it.
    Sensor,
}

/// What the card says of a server of `version` that crashes on MQTT over WebSocket without an
/// mqtt block: that it is safe once `seen` serving MQTT, that the page cannot tell before.
/// Nothing for the others.
pub fn mqtt_note(version: &str, seen: Option<MqttSeen>) -> Option<String> {
    if !crashes_without_mqtt(version) {
        return None;
    }
    Some(match seen {
        Some(MqttSeen::Sensor) => format!(
            "This server, nats-server {version}, has an mqtt block: this tab's sensor connected to it. It is safe to start."
        ),
        None => format!(
            "This server is nats-server {version}: if its configuration has no mqtt block, the sensor makes it \
             stop (a crash; 2.10 and later refuse instead). A page cannot tell (a reading that came in over \
             MQTT may have come through another server). The project's nats-server.conf has one: a server \
             started with ./nats.sh or ./run.sh is safe."
        ),
    })
}

/// The latest reading and where it came from.
#[derive(Debug, Clone, PartialEq)]
struct Latest {
    reading: Reading,
    at_ms: f64,
    /// It came through the MQTT listener (nats-server adds the `Nmqtt-Pub` header).
    via_mqtt: bool,
}

impl Latest {
    fn charted(&self) -> bool {
        plausible(self.reading.value)
    }
}

/// The in-browser sensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sensor {
    Off,
    Connecting,
    On,
    /// Its connection was lost; it tries again until it is back or stopped.
    Reconnecting,
}

/// How long the sensor waits before its `attempt`-th reconnection (from 1): [`RECONNECT_FIRST`],
/// doubling up to [`RECONNECT_MAX`] (nats-ws's [`ReconnectPolicy::delay`]), each made up to a
/// quarter shorter by `jitter` (in [0, 1)) so that the tabs that lost the same server do not all
/// come back in the same instant.
pub fn reconnect_wait(attempt: u32, jitter: f64) -> Duration {
    let policy = ReconnectPolicy {
        initial_delay: RECONNECT_FIRST,
        factor: 2.0,
        max_delay: RECONNECT_MAX,
        ..ReconnectPolicy::default()
    };
    let wait = policy.delay(attempt.saturating_sub(1));
    // NaN (which `clamp` passes through) counts as no jitter.
    let jitter = if jitter.is_nan() {
        0.0
    } else {
        jitter.clamp(0.0, 1.0)
    };
    wait.mul_f64(1.0 - 0.25 * jitter)
}

/// Whether the sensor tries again after `e` once it had been connected: yes when the server was
/// lost, unreachable or busy (a restart looks like that); no when it refused the sensor or spoke
/// something else, which trying again would not change.
pub fn worth_retrying(e: &MqttError) -> bool {
    match e {
        MqttError::Closed(_)
        | MqttError::Unavailable { .. }
        | MqttError::NoConnAck { .. }
        | MqttError::NotConnected => true,
        // 3: "the MQTT service is unavailable", which a server that is starting may say.
        MqttError::Refused { code, .. } => *code == 3,
        MqttError::InvalidUrl { .. } | MqttError::Protocol(_) | MqttError::Encode(_) => false,
    }
}

/// The NATS url the sensor's next connection goes to (its MQTT url is derived from it), given
/// the server the tab is `connected` to (url, version), the url that last worked (`good`), and
/// `fallback` for neither: the tab's server when nothing worked yet, or when it is the same, or
/// when its version takes MQTT over WebSocket without crashing (a 2.9 server without an mqtt
/// block stops at the first attempt, and would again at each); the one that worked otherwise,
/// also while the tab is not connected.
pub fn sensor_target(
    connected: Option<(&str, &str)>,
    good: Option<&str>,
    fallback: impl FnOnce() -> String,
) -> String {
    match (connected, good) {
        (Some((url, _)), None) => url.to_owned(),
        (Some((url, version)), Some(good)) if url == good || !crashes_without_mqtt(version) => {
            url.to_owned()
        }
        (_, Some(good)) => good.to_owned(),
        (None, None) => fallback(),
    }
}

/// The NATS WebSocket url this tab is connected to (else the first of the settings).
fn nats_url(client: &Client) -> String {
    match client.status() {
        Status::Connected { url, .. } => url,
        _ => Settings::applied()
            .servers
            .split([',', ' ', '\n'])
            .map(str::trim)
            .find(|s| !s.is_empty())
            .unwrap_or_default()
            .to_owned(),
    }
}

/// The app's credentials as MQTT's: user and password, or the token as the password (nats-server
/// reads an MQTT password as a token too; MQTT 3.1.1 allows no password without a user name).
fn login(settings: &Settings) -> Option<(String, String)> {
    if !settings.token.is_empty() {
        Some(("token".into(), settings.token.clone()))
    } else if !settings.user.is_empty() {
        Some((settings.user.clone(), settings.password.clone()))
    } else {
        None
    }
}

#[component]
pub fn MqttCard(client: Client) -> impl IntoView {
    let tasks = CardTasks::new();
    let log = StepLog::new();
    let samples = RwSignal::new(Vec::<Sample>::new());
    let latest = RwSignal::new(None::<Latest>);
    let unreadable = RwSignal::new(None::<String>);
    let sub_error = RwSignal::new(None::<String>);
    let sensor = RwSignal::new(Sensor::Off);
    let visible = use_document_visible();
    let sensor_id = RwSignal::new(String::new());
    let sent = RwSignal::new(0u64);
    let sensor_error = RwSignal::new(None::<String>);
    // Why the running sensor is reconnecting.
    let sensor_down = RwSignal::new(None::<String>);
    // The newest reading of the sensor's current connection, until one of that connection's
    // readings comes back over NATS: the sensor's id, the reading's text, when it went out.
    let awaited = StoredValue::new(None::<(String, String, f64)>);
    let stop = StoredValue::new(None::<oneshot::Sender<()>>);
    let now = use_now(Duration::from_secs(1));
    // The server this tab is connected to (its id, new at each start, and version), as soon as it
    // said which it is (on a page loaded directly, the card is made before the server's INFO);
    // kept while reconnecting.
    let status = leptos_nats::use_nats().status;
    let server = {
        let client = client.clone();
        let id = move || {
            client
                .server_info()
                .map(|info| (info.server_id, info.version))
        };
        let first = id();
        Memo::new(
            move |before: Option<&Option<(String, String)>>| match status.get() {
                Status::Connected { .. } => id(),
                _ => before.cloned().unwrap_or_else(|| first.clone()),
            },
        )
    };
    // Which server (by id) this tab saw serve MQTT, and how.
    let mqtt_seen = RwSignal::new(None::<(String, MqttSeen)>);
    let warning = Memo::new(move |_| {
        server.with(|s| {
            let (id, version) = s.as_ref()?;
            let seen =
                mqtt_seen.with(|m| m.as_ref().filter(|(on, _)| on == id).map(|(_, how)| *how));
            mqtt_note(version, seen)
        })
    });

    log.info("tab → server", format!("SUB {}", sensor::NATS_SUBJECT));
    {
        let client = client.clone();
        spawn_while_mounted(async move {
            let mut sub = match client.subscribe(sensor::NATS_SUBJECT) {
                Ok(sub) => sub,
                Err(e) => {
                    let text = format!("cannot subscribe to {}: {e}", sensor::NATS_SUBJECT);
                    log.fail("tab → server", text.clone());
                    sub_error.set(Some(text));
                    return;
                }
            };
            let mut first = true;
            // Drawn at most once a frame: `device.temp` is a shared subject that any client may
            // flood, and every reading redrew the whole chart.
            let mut pacer = Pacer::default();
            let mut waiting: Vec<Sample> = Vec::new();
            let mut newest: Option<Latest> = None;
            let mut garbage: Option<String> = None;
            let mut garbage_said_ms = f64::NEG_INFINITY;
            let mut implausible_said_ms = f64::NEG_INFINITY;
            let draw = |waiting: &mut Vec<Sample>,
                        newest: &mut Option<Latest>,
                        garbage: &mut Option<String>| {
                if !waiting.is_empty() {
                    samples.update(|s| waiting.drain(..).for_each(|x| add_sample(s, x)));
                }
                if let Some(latest_now) = newest.take() {
                    latest.set(Some(latest_now));
                }
                if let Some(text) = garbage.take() {
                    unreadable.set(Some(text));
                }
            };
            loop {
                let pending = !waiting.is_empty() || newest.is_some() || garbage.is_some();
                let message = match pacer.next(&mut sub, pending).await {
                    Paced::Item(message) => message,
                    Paced::Draw => {
                        draw(&mut waiting, &mut newest, &mut garbage);
                        pacer.drawn();
                        continue;
                    }
                    Paced::Ended => break draw(&mut waiting, &mut newest, &mut garbage),
                };
                let message = match message {
                    Ok(m) => m,
                    Err(e) => {
                        sub_error.set(Some(format!("{}: {e}", sensor::NATS_SUBJECT)));
                        continue;
                    }
                };
                if sub_error.with_untracked(Option::is_some) {
                    sub_error.set(None);
                }
                let Some(reading) = sensor::parse(&message.payload) else {
                    let text = unreadable_text(&message.payload);
                    // A step at most once a second: a flood of them would bury the others.
                    let now = monotonic_ms();
                    if now - garbage_said_ms >= 1000.0 {
                        garbage_said_ms = now;
                        log.fail(
                            "server → tab",
                            format!("{}: not a reading, ignored: {text}", sensor::NATS_SUBJECT),
                        );
                    }
                    garbage = Some(text);
                    continue;
                };
                let at_ms = now_ms();
                let via_mqtt = message
                    .headers
                    .as_ref()
                    .is_some_and(|h| h.get("Nmqtt-Pub").is_some());
                let origin = if via_mqtt {
                    "MQTT device/temp"
                } else {
                    "a NATS publisher"
                };
                if let Some((id, text, sent_at)) = awaited.get_value() {
                    if reading.sensor.as_deref() == Some(id.as_str()) && text == reading.text {
                        awaited.set_value(None);
                        log.ok(
                            "server → tab",
                            format!(
                                "{} {}: this tab's reading came back over NATS {:.0} ms after its MQTT PUBLISH (from {origin})",
                                sensor::NATS_SUBJECT,
                                reading.text,
                                monotonic_ms() - sent_at
                            ),
                        );
                    }
                } else if first {
                    log.ok(
                        "server → tab",
                        format!("{} {} (from {origin})", sensor::NATS_SUBJECT, reading.text),
                    );
                }
                first = false;
                if plausible(reading.value) {
                    waiting.push(Sample {
                        at_ms,
                        value: reading.value,
                    });
                } else {
                    // A step at most once a second, as for payloads that are not readings.
                    let now = monotonic_ms();
                    if now - implausible_said_ms >= 1000.0 {
                        implausible_said_ms = now;
                        log.fail(
                            "server → tab",
                            format!(
                                "{} {} (from {origin}): not a plausible temperature, not charted",
                                sensor::NATS_SUBJECT,
                                reading.text
                            ),
                        );
                    }
                }
                newest = Some(Latest {
                    reading,
                    at_ms,
                    via_mqtt,
                });
                if pacer.due() {
                    draw(&mut waiting, &mut newest, &mut garbage);
                    pacer.drawn();
                }
            }
        });
    }

    let toggle = {
        let client = client.clone();
        move |_| {
            if sensor.get_untracked() != Sensor::Off {
                // Dropping the sender ends the run, which sends DISCONNECT. A reading still
                // awaited is not this run's any more (another sensor's may read the same).
                stop.update_value(|s| drop(s.take()));
                awaited.set_value(None);
                return;
            }
            let (tx, rx) = oneshot::channel();
            stop.set_value(Some(tx));
            sensor.set(Sensor::Connecting);
            sensor_error.set(None);
            sensor_down.set(None);
            sent.set(0);
            awaited.set_value(None);
            log.start();
            let client = client.clone();
            tasks.spawn(async move {
                let run = SensorRun {
                    log,
                    sensor,
                    sensor_id,
                    sent,
                    awaited,
                    down: sensor_down,
                    mqtt_seen,
                };
                if let Err(e) = run.run(&client, rx).await {
                    sensor_error.try_set(Some(e.to_string()));
                }
                sensor.try_set(Sensor::Off);
            });
        }
    };

    let chart = move || {
        let now = now.get();
        let shown = samples.with(|s| in_window(s, now));
        let range = value_range(&shown);
        let points = chart_points(&shown, now, range, CHART_W, CHART_H);
        let label = match (shown.first(), shown.last()) {
            (Some(_), Some(_)) => format!(
                "Temperature over the last 60 s: {} readings between {} and {} °C",
                shown.len(),
                degrees(
                    shown.iter().map(|s| s.value).fold(f64::INFINITY, f64::min),
                    2
                ),
                degrees(
                    shown
                        .iter()
                        .map(|s| s.value)
                        .fold(f64::NEG_INFINITY, f64::max),
                    2
                ),
            ),
            _ => "Temperature over the last 60 s: no readings".to_owned(),
        };
        // The latest reading as a dot: HTML over the stretched SVG, so that it stays round.
        let last = shown.last().map(|s| {
            let x = (1.0 - (now - s.at_ms) / WINDOW_MS).clamp(0.0, 1.0) * 100.0;
            let y = (1.0 - height_in(s.value, range)) * 100.0;
            view! { <span class="pg-mqtt-dot" aria-hidden="true" style=format!("left: {x:.2}%; top: {y:.2}%")></span> }
        });
        view! {
            <div class="pg-mqtt-plot">
                <span class="pg-mqtt-axis top" aria-hidden="true">{degrees(range.1, 1)}</span>
                <div class="pg-mqtt-canvas">
                <svg
                    data-testid="pg-mqtt-chart"
                    viewBox=format!("0 0 {CHART_W} {CHART_H}")
                    preserveAspectRatio="none"
                    role="img"
                    aria-label=label
                >
                    <line class="chart-axis" x1="0" y1=CHART_H x2=CHART_W y2=CHART_H/>
                    <polyline class="chart-line" points=points/>
                </svg>
                {last}
                </div>
                <span class="pg-mqtt-axis bottom" aria-hidden="true">{degrees(range.0, 1)}</span>
                <p class="pg-mqtt-span muted small" aria-hidden="true">
                    <span>"−60 s"</span>
                    <span>"now"</span>
                </p>
            </div>
        }
    };

    let age = move || {
        latest.with(|l| {
            l.as_ref().map(|l| {
                let secs = ((now.get() - l.at_ms) / 1000.0).max(0.0);
                let origin = if l.via_mqtt { "via MQTT" } else { "via NATS" };
                format!("{origin}, {secs:.0} s ago")
            })
        })
    };

    view! {
        <section class="card pg-card" aria-labelledby="pg-mqtt-title">
            <div class="card-head">
                <h2 id="pg-mqtt-title">"6 · MQTT ingress"</h2>
                <button
                    data-testid="pg-mqtt-sensor"
                    class:secondary=move || sensor.get() != Sensor::Off
                    aria-pressed=move || if sensor.get() == Sensor::Off { "false" } else { "true" }
                    on:click=toggle
                >
                    {move || match sensor.get() {
                        Sensor::Off => "Start in-browser sensor",
                        Sensor::Connecting => "Connecting… (stop)",
                        Sensor::On => "Stop sensor",
                        Sensor::Reconnecting => "Reconnecting… (stop)",
                    }}
                </button>
            </div>
            <p class="muted small">
                "An MQTT publish to " <code>{sensor::MQTT_TOPIC}</code> " arrives on the NATS subject "
                <code>{sensor::NATS_SUBJECT}</code> ". The in-browser sensor speaks MQTT over WebSocket to this server's "
                <code>"/mqtt"</code> ", once a second; or run " <code>"target/debug/via-sensor"</code>
                " / Start " <code>"sensor"</code> " on " <A href="/processes">"Processes"</A> "."
            </p>
            {move || warning.get().map(|w| view! { <p class="hint" data-testid="pg-mqtt-old-server">{w}</p> })}
            <div class="pg-mqtt-now">
                <span class="pg-mqtt-reading">
                    <span data-testid="pg-mqtt-reading">
                        {move || latest.with(|l| l.as_ref().map_or_else(|| "–".to_owned(), |l| l.reading.text.clone()))}
                    </span>
                    <span class="pg-mqtt-unit">" °C"</span>
                </span>
                <span class="muted small">{move || age().unwrap_or_else(|| "no reading yet".to_owned())}</span>
                {move || latest.with(|l| l.as_ref().is_some_and(|l| !l.charted())).then(|| view! {
                    <span class="pg-mqtt-implausible" data-testid="pg-mqtt-implausible">
                        "not a plausible temperature: not charted"
                    </span>
                })}
            </div>
            {chart}
            <p class="muted small" data-testid="pg-mqtt-sensor-state">
                {move || match sensor.get() {
                    Sensor::Off => "In-browser sensor off.".to_owned(),
                    Sensor::Connecting => "In-browser sensor connecting…".to_owned(),
                    Sensor::On => format!(
                        "In-browser sensor {} on: {} readings published to {}{}",
                        sensor_id.get(),
                        sent.get(),
                        sensor::MQTT_TOPIC,
                        match visible.get() {
                            true => ".",
                            // Chromium runs a hidden tab's timers once a second, then (after
                            // minutes) once a minute: "once a second" would not be true.
                            false => "; this tab is hidden, and the browser runs its timers less often: \
                                      fewer than one a second until it is shown again.",
                        }
                    ),
                    Sensor::Reconnecting => format!(
                        "In-browser sensor {} reconnecting ({}); {} readings sent so far, none while it is away.",
                        sensor_id.get(),
                        sensor_down.get().unwrap_or_default(),
                        sent.get()
                    ),
                }}
            </p>
            <Show when=move || sensor_error.get().is_some()>
                <p class="error" role="alert" data-testid="pg-mqtt-error">{move || sensor_error.get()}</p>
            </Show>
            <Show when=move || sub_error.get().is_some()>
                <p class="error" role="alert">{move || sub_error.get()}</p>
            </Show>
            <Show when=move || unreadable.get().is_some()>
                <p class="muted small" data-testid="pg-mqtt-unreadable">
                    "Last payload that was not a reading (ignored): " <code>{move || unreadable.get()}</code>
                </p>
            </Show>
            <StepList log testid="pg-mqtt-step"/>
        </section>
    }
}

/// One run of the in-browser sensor: its signals, all `Copy` and written with `try_` (the run may
/// outlive the card by a tick).
struct SensorRun {
    log: StepLog,
    sensor: RwSignal<Sensor>,
    sensor_id: RwSignal<String>,
    sent: RwSignal<u64>,
    awaited: StoredValue<Option<(String, String, f64)>>,
    /// Why it is reconnecting, while it is.
    down: RwSignal<Option<String>>,
    /// Set when it connected to the server the tab is on.
    mqtt_seen: RwSignal<Option<(String, MqttSeen)>>,
}

/// How a stretch of publishing ended.
enum Ended {
    Stopped,
    /// The connection was lost: why, and which way it failed (for the step's arrow).
    Lost(MqttError, &'static str),
}

/// The sensor's stop button, as a future that completes when it is pressed.
type Stop = futures::future::Fuse<oneshot::Receiver<()>>;

impl SensorRun {
    /// Connects, publishes a reading every second until `stop` fires (or its sender is dropped),
    /// then disconnects. A connection lost on the way is made again (the same client id, clean
    /// session), waiting [`reconnect_wait`] between attempts, for as long as it takes: a device
    /// does not give up on its broker. The waits start over only once a connection has lasted
    /// [`STABLE_AFTER`]. Each attempt goes to [`sensor_target`]. `Err` when the first connection
    /// failed, or when the server refused one for a reason another attempt would not change
    /// ([`worth_retrying`]).
    async fn run(self, client: &Client, stop: oneshot::Receiver<()>) -> Result<(), MqttError> {
        let log = self.log;
        let client_id = format!("via-tab-{}", random_hex(6));
        let mut stop = stop.fuse();
        let mut good = None::<String>;
        let first = futures::select! {
            _ = &mut stop => None,
            connected = self.connect(client, &client_id, &mut good).fuse() => Some(connected),
        };
        let mut attempts = 0u32;
        let mut mqtt = match first {
            None => {
                log.ok("tab", "stopped while connecting");
                return Ok(());
            }
            Some(Ok(mqtt)) => mqtt,
            // The server is down, not without MQTT: the tab's own connection is not up either.
            // Tried again as a lost connection is, until it is back or the sensor is stopped.
            Some(Err(e)) if worth_retrying(&e) && !client.status().is_connected() => {
                log.fail(
                    "tab → server",
                    format!("the server is not reachable (nor is it over NATS): {e}"),
                );
                match self
                    .reconnect(client, &client_id, &mut stop, e, &mut attempts, &mut good)
                    .await?
                {
                    Some(mqtt) => mqtt,
                    None => {
                        log.ok("tab", "stopped while connecting");
                        return Ok(());
                    }
                }
            }
            Some(Err(e)) => return Err(e),
        };
        let seed = u64::from_str_radix(&random_hex(12), 16).unwrap_or(7);
        let mut n: u64 = 0;
        loop {
            let connected_at = monotonic_ms();
            let (lost, arrow) = match self.publish(&mut mqtt, &mut stop, seed, &mut n).await {
                Ended::Stopped => break,
                Ended::Lost(e, arrow) => (e, arrow),
            };
            log.fail(arrow, lost.to_string());
            drop(mqtt);
            if monotonic_ms() - connected_at >= STABLE_AFTER.as_millis() as f64 {
                attempts = 0;
            }
            mqtt = match self
                .reconnect(
                    client,
                    &client_id,
                    &mut stop,
                    lost,
                    &mut attempts,
                    &mut good,
                )
                .await?
            {
                Some(mqtt) => mqtt,
                None => {
                    log.ok(
                        "tab",
                        format!("stopped while reconnecting, after {n} readings"),
                    );
                    return Ok(());
                }
            };
        }
        mqtt.disconnect();
        log.ok(
            "tab → server",
            format!("DISCONNECT after {n} readings; socket closed"),
        );
        Ok(())
    }

    /// Opens the socket to the MQTT url of [`sensor_target`] and sends CONNECT; on success the
    /// sensor is on, and `good` is the NATS url that worked.
    async fn connect(
        &self,
        client: &Client,
        client_id: &str,
        good: &mut Option<String>,
    ) -> Result<MqttWs, MqttError> {
        let log = self.log;
        let connected = match client.status() {
            Status::Connected { url, version, .. } => Some((url, version)),
            _ => None,
        };
        let nats = sensor_target(
            connected.as_ref().map(|(u, v)| (u.as_str(), v.as_str())),
            good.as_deref(),
            || nats_url(client),
        );
        let url = mqtt_url(&nats).inspect_err(|e| log.fail("tab", e.to_string()))?;
        let url = url.as_str();
        log.info(
            "tab → server",
            format!("open a WebSocket to {url}, subprotocol mqtt"),
        );
        let mut mqtt = MqttWs::open(url)
            .await
            .inspect_err(|e| log.fail("server → tab", e.to_string()))?;
        log.ok(
            "server → tab",
            format!("WebSocket open, subprotocol '{}'", mqtt.protocol()),
        );
        let options = ConnectOptions {
            client_id: client_id.to_owned(),
            keep_alive: KEEP_ALIVE,
            login: login(&Settings::applied()),
        };
        log.info(
            "tab → server",
            format!(
                "CONNECT as {client_id}: MQTT 3.1.1, clean session, keepalive {} s",
                KEEP_ALIVE.as_secs()
            ),
        );
        let session_present = mqtt
            .connect(&options)
            .await
            .inspect_err(|e| log.fail("server → tab", e.to_string()))?;
        log.ok(
            "server → tab",
            format!(
                "CONNACK: accepted (session present: {})",
                if session_present { "yes" } else { "no" }
            ),
        );
        if connected.as_ref().is_some_and(|(url, _)| *url == nats) {
            if let Some(info) = client.server_info() {
                self.mqtt_seen
                    .try_set(Some((info.server_id, MqttSeen::Sensor)));
            }
        }
        *good = Some(nats);
        self.sensor_id.try_set(client_id.to_owned());
        self.down.try_set(None);
        self.sensor.try_set(Sensor::On);
        Ok(mqtt)
    }

    /// Publishes reading `n`, `n + 1`, … once a second until stopped or the connection is lost.
    /// A reading of each connection is awaited back over NATS.
    async fn publish(&self, mqtt: &mut MqttWs, stop: &mut Stop, seed: u64, n: &mut u64) -> Ended {
        let log = self.log;
        // Stopped while it was connecting: no reading.
        if stop.now_or_never().is_some() {
            return Ended::Stopped;
        }
        let mut first = true;
        // A QoS 0 PUBLISH gets no answer: a server that refuses it (a user who may not publish
        // on device.temp) drops it without a word. Said once, if none came back in time.
        let started = monotonic_ms();
        let mut told = false;
        loop {
            if !told
                && monotonic_ms() - started >= NO_READING_BACK_MS
                && self.awaited.try_with_value(Option::is_some) == Some(true)
            {
                told = true;
                log.fail(
                    "server → tab",
                    format!(
                        "no reading of this sensor came back on {} in {} s: the server may drop its PUBLISH (may the user in ⚙ publish there?)",
                        sensor::NATS_SUBJECT,
                        NO_READING_BACK_MS / 1000.0
                    ),
                );
            }
            // Named after this run's MQTT client id, so that another sensor's reading of the same
            // value is not taken for this one's.
            let id = self.sensor_id.try_get_untracked().unwrap_or_default();
            let payload = sensor::payload_from(sensor::simulated(seed, *n), &id);
            if let Err(e) = mqtt.publish(sensor::MQTT_TOPIC, payload.as_bytes()) {
                return Ended::Lost(e, "tab → server");
            }
            *n += 1;
            self.sent.try_set(*n);
            // Until a reading of this connection came back over NATS, the newest is the one
            // awaited: after a server restart the first may go out before the tab's own NATS
            // subscription is back.
            if first || self.awaited.try_with_value(Option::is_some) == Some(true) {
                if let Some(reading) = sensor::parse(payload.as_bytes()) {
                    self.awaited
                        .try_set_value(Some((id, reading.text, monotonic_ms())));
                }
            }
            if first {
                first = false;
                log.info(
                    "tab → server",
                    format!(
                        "PUBLISH {} {payload} (QoS 0); then one a second",
                        sensor::MQTT_TOPIC
                    ),
                );
            }
            futures::select! {
                _ = &mut *stop => return Ended::Stopped,
                e = mqtt.closed().fuse() => return Ended::Lost(e, "server → tab"),
                _ = gloo_timers::future::sleep(SENSOR_EVERY).fuse() => {}
            }
        }
    }

    /// Connects again after `lost`, until it works (`Some`) or the sensor is stopped (`None`);
    /// `attempts` counts on from where it is. `Err` when the server refuses it for good.
    async fn reconnect(
        &self,
        client: &Client,
        client_id: &str,
        stop: &mut Stop,
        lost: MqttError,
        attempts: &mut u32,
        good: &mut Option<String>,
    ) -> Result<Option<MqttWs>, MqttError> {
        let mut last = lost;
        loop {
            if !worth_retrying(&last) {
                return Err(last);
            }
            *attempts = attempts.saturating_add(1);
            let wait = reconnect_wait(*attempts, js_sys::Math::random());
            self.down.try_set(Some(last.to_string()));
            self.sensor.try_set(Sensor::Reconnecting);
            self.log.info(
                "tab",
                format!(
                    "reconnecting in {:.1} s (attempt {attempts})",
                    wait.as_secs_f64()
                ),
            );
            futures::select! {
                _ = &mut *stop => return Ok(None),
                _ = gloo_timers::future::sleep(wait).fuse() => {}
            }
            // The tab's NATS connection is down too: the server is away, and every try would fail
            // (and say so) until it is back. Tried again once it is.
            if !client.status().is_connected() {
                self.log.info(
                    "tab",
                    "the tab's NATS connection is down too: the next try once the server is back",
                );
                // (A client closed instead: the try is made, and fails, as before.)
                futures::select! {
                    _ = &mut *stop => return Ok(None),
                    _ = leptos_nats::until_connected(client).fuse() => {}
                }
            }
            futures::select! {
                _ = &mut *stop => return Ok(None),
                connected = self.connect(client, client_id, good).fuse() => match connected {
                    Ok(mqtt) => return Ok(Some(mqtt)),
                    Err(e) => last = e,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::mqtt_ws::refusal_reason;

    fn s(at_ms: f64, value: f64) -> Sample {
        Sample { at_ms, value }
    }

    #[test]
    fn only_the_last_60_s_are_kept_and_drawn() {
        let mut samples = Vec::new();
        for i in 0..100 {
            add_sample(&mut samples, s(i as f64 * 1000.0, 20.0));
        }
        // 39 s … 99 s: 61 readings, the oldest exactly 60 s before the newest.
        assert_eq!(samples.len(), 61);
        assert_eq!(samples[0].at_ms, 39_000.0);
        // 10 s later the window has moved on.
        assert_eq!(in_window(&samples, 109_000.0).len(), 51);
        for i in 0..2 * MAX_SAMPLES {
            add_sample(&mut samples, s(200_000.0 + i as f64, 20.0));
        }
        assert_eq!(samples.len(), MAX_SAMPLES);
    }

    #[test]
    fn time_runs_left_to_right_and_values_bottom_to_top() {
        let samples = [s(40_000.0, 20.0), s(70_000.0, 22.0), s(100_000.0, 21.0)];
        let range = value_range(&samples);
        assert!(range.0 < 20.0 && range.1 > 22.0, "{range:?}");
        let points = chart_points(&samples, 100_000.0, range, 600.0, 160.0);
        let xy: Vec<(f64, f64)> = points
            .split(' ')
            .map(|p| {
                let (x, y) = p.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect();
        assert_eq!(xy[0].0, 0.0, "60 s ago is the left edge: {points}");
        assert_eq!(xy[1].0, 300.0);
        assert_eq!(xy[2].0, 600.0, "now is the right edge");
        // The warmest is highest (smallest y), the coldest lowest.
        assert!(xy[1].1 < xy[2].1 && xy[2].1 < xy[0].1, "{points}");
        assert_eq!(chart_points(&[], 0.0, (0.0, 1.0), 600.0, 160.0), "");
    }

    #[test]
    fn a_steady_sensor_draws_a_steady_line_in_the_middle() {
        let samples = [s(0.0, 21.37), s(1000.0, 21.37)];
        let (lo, hi) = value_range(&samples);
        assert!((hi - lo - 1.0).abs() < 1e-9, "{lo} {hi}");
        let points = chart_points(&samples, 1000.0, (lo, hi), 600.0, 160.0);
        assert!(points.ends_with("600.0,80.0"), "{points}");
        assert_eq!(value_range(&[]), (0.0, 1.0));
    }

    /// The range and points of `samples`, checked finite.
    fn drawn(samples: &[Sample]) -> ((f64, f64), String) {
        let range = value_range(samples);
        assert!(range.0.is_finite() && range.1.is_finite(), "{range:?}");
        let points = chart_points(samples, 100_000.0, range, 600.0, 160.0);
        let finite = !points.contains("NaN") && !points.contains("inf");
        assert!(finite, "{points}");
        (range, points)
    }

    /// Readings near ±f64::MAX (valid JSON numbers): a finite range, points on the chart, short
    /// labels. (The range was infinite, every point NaN, the axis said `inf`.)
    #[test]
    fn readings_at_the_ends_of_f64_still_draw() {
        let (range, points) = drawn(&[s(40_000.0, -1e308), s(70_000.0, 1e308), s(100_000.0, 0.0)]);
        assert!(
            points.ends_with("600.0,80.0"),
            "zero in the middle: {points}"
        );
        assert_eq!(degrees(range.1, 1), "1.1e308");
        assert_eq!(degrees(-21.456, 2), "-21.46");
        // Bunched near one end: the margin would pass f64's ends.
        drawn(&[s(40_000.0, 1e308), s(100_000.0, f64::MAX)]);
        drawn(&[s(40_000.0, f64::MIN), s(100_000.0, -1e308)]);
    }

    #[test]
    fn unreadable_payloads_are_text_cut_short() {
        assert_eq!(unreadable_text(b"<b>warm</b>"), "<b>warm</b>");
        assert_eq!(unreadable_text(&[0xff]), "\u{fffd}");
        let long = "x".repeat(SHOWN_CHARS + 5);
        assert!(unreadable_text(long.as_bytes()).ends_with('…'));
    }

    #[test]
    fn reconnecting_waits_double_up_to_5_s_and_never_all_at_once() {
        let ms = |attempt, jitter| reconnect_wait(attempt, jitter).as_millis();
        assert_eq!(
            [1, 2, 3, 4, 5, 6, 1000, u32::MAX].map(|a| ms(a, 0.0)),
            [500, 1000, 2000, 4000, 5000, 5000, 5000, 5000]
        );
        assert_eq!(ms(0, 0.0), 500, "attempt 0 is read as the first");
        // Jitter takes off up to a quarter, and out-of-range values are clamped.
        assert_eq!(ms(1, 0.5), 437);
        assert_eq!(ms(4, 0.999_999), 3000);
        assert_eq!(ms(4, 7.0), 3000);
        assert_eq!(ms(4, -1.0), 4000);
        assert_eq!(ms(4, f64::NAN), 4000);
    }

    #[test]
    fn the_sensor_moves_with_the_tab_but_not_to_a_server_it_would_crash() {
        let none = || "ws://first-of-settings:8080".to_owned();
        let (a, b) = ("ws://a:8080", "ws://b:8080");
        // Nothing worked yet: the tab's server, else the settings'.
        assert_eq!(sensor_target(Some((a, "2.9.10")), None, none), a);
        assert_eq!(
            sensor_target(None, None, none),
            "ws://first-of-settings:8080"
        );
        // The tab is not connected: the one that worked, not the settings' first.
        assert_eq!(sensor_target(None, Some(a), none), a);
        // The tab moved on: along, unless the new server is one that crashes.
        assert_eq!(sensor_target(Some((b, "2.15.1")), Some(a), none), b);
        assert_eq!(sensor_target(Some((b, "2.9.10")), Some(a), none), a);
        assert_eq!(sensor_target(Some((a, "2.9.10")), Some(a), none), a);
    }

    #[test]
    fn a_lost_or_busy_server_is_tried_again_a_refusal_is_not() {
        let url = || "ws://127.0.0.1:8080/mqtt".to_owned();
        for again in [
            MqttError::Closed("the connection failed (code 1006)".into()),
            MqttError::Unavailable {
                url: url(),
                detail: "not open after 5 s".into(),
            },
            MqttError::NoConnAck {
                url: url(),
                secs: 5,
            },
            MqttError::Refused {
                code: 3,
                reason: refusal_reason(3),
            },
        ] {
            assert!(worth_retrying(&again), "{again}");
        }
        for not in [
            MqttError::Refused {
                code: 4,
                reason: refusal_reason(4),
            },
            MqttError::Refused {
                code: 5,
                reason: refusal_reason(5),
            },
            MqttError::Protocol("a text frame (MQTT is binary)".into()),
            MqttError::InvalidUrl {
                url: "nats://x".into(),
                reason: "no scheme (ws:// or wss://)",
            },
        ] {
            assert!(!worth_retrying(&not), "{not}");
        }
    }

    #[test]
    fn servers_before_2_10_get_the_warning_until_seen_serving_mqtt() {
        let unknown = mqtt_note("2.9.10", None).expect("2.9 gets a note");
        assert!(unknown.contains("nats-server 2.9.10"), "{unknown}");
        assert!(unknown.contains("cannot tell"), "{unknown}");
        let safe = mqtt_note("2.9.10", Some(MqttSeen::Sensor)).expect("still a note");
        assert!(
            safe.contains("has an mqtt block") && safe.contains("safe to start"),
            "{safe}"
        );
        assert!(crashes_without_mqtt("v2.2.6"));
        for current in ["2.10.0", "2.15.1", "3.0.0", "dev", ""] {
            assert!(!crashes_without_mqtt(current), "{current}");
            assert_eq!(mqtt_note(current, None), None);
        }
    }

    #[test]
    fn error_codes_are_not_temperatures() {
        for t in [21.37, 0.0, -40.0, -273.15, 85.0, 1000.0] {
            assert!(plausible(t), "{t}");
        }
        for code in [99_999.0, 32_767.0, 65_535.0, -999.0, -273.16, 1e308] {
            assert!(!plausible(code), "{code}");
        }
    }

    #[test]
    fn the_token_goes_as_the_password() {
        let mut settings = Settings {
            servers: String::new(),
            name: String::new(),
            user: "ann".into(),
            password: "pw".into(),
            token: String::new(),
            remember: false,
        };
        assert_eq!(login(&settings), Some(("ann".into(), "pw".into())));
        settings.token = "t0k".into();
        assert_eq!(login(&settings), Some(("token".into(), "t0k".into())));
        settings.token.clear();
        settings.user.clear();
        assert_eq!(login(&settings), None);
    }
}

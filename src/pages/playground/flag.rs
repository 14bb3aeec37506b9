//! Feature flag: the KV key `site_maintenance` of bucket `configs_playgrnd` holds `true` or
//! `false` (plain text). The card's admin switch writes it; [`MaintenanceBanner`], a separate
//! component as an app would have, watches it and shows a banner while it is `true` — at once, in
//! every tab, across reconnects and server restarts (`leptos_nats::use_kv_key`, which also creates
//! the bucket, history 5, when it is missing).
//!
//! Anything else in the key (another program wrote it) is shown as text and read as "not a flag":
//! the banner stays hidden, nothing breaks.

use futures::{FutureExt, StreamExt};
use leptos::prelude::*;
use leptos_nats::{use_kv_key, UseKvKeyReturn};
use nats_ws::kv::Entry;
use nats_ws::Client;

use super::steps::{StepList, StepLog};

pub const BUCKET: &str = "configs_playgrnd";
pub const KEY: &str = "site_maintenance";

/// What the key says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flag {
    /// The key has no value (never written, or deleted).
    Unset,
    On,
    Off,
    /// A value that is not a flag, as text.
    Invalid(String),
}

impl Flag {
    /// Reads a value: `true` / `false`, also with surrounding blanks or in another case (Python's
    /// `str(True)` is `True`); anything else is [`Flag::Invalid`].
    pub fn read(value: Option<&[u8]>) -> Flag {
        let Some(value) = value else {
            return Flag::Unset;
        };
        let text = String::from_utf8_lossy(value);
        match text.trim().to_ascii_lowercase().as_str() {
            "true" => Flag::On,
            "false" => Flag::Off,
            _ => Flag::Invalid(text.into_owned()),
        }
    }

    pub fn of(entry: Option<&Entry>) -> Flag {
        Flag::read(entry.map(|e| &e.value[..]))
    }

    /// How the card states it: `true`, `false`, `(not set)`, `'maybe': not a flag`.
    pub fn describe(&self) -> String {
        match self {
            Flag::Unset => "(not set)".to_owned(),
            Flag::On => "true".to_owned(),
            Flag::Off => "false".to_owned(),
            Flag::Invalid(text) => format!("{}: not a flag", quoted(text)),
        }
    }
}

/// `'text'`, cut at 60 characters.
fn quoted(text: &str) -> String {
    format!("'{}'", crate::model::clip_text(text, 60))
}

/// A write of this tab's, until the watch has delivered it.
#[derive(Debug, Clone, PartialEq)]
struct InFlight {
    value: bool,
    /// When it was sent (the step log's time).
    sent_at: f64,
    /// Its revision, once acknowledged.
    rev: Option<u64>,
    /// Deliveries of the value written that came before the acknowledgement, (revision, when):
    /// one may be this write, the others another client's identical write. Which is which is
    /// known from the acknowledgement's revision.
    early: Vec<(u64, f64)>,
}

/// At most this many early deliveries are kept apart; of more, the card cannot say whose they are.
const MAX_EARLY: usize = 8;

/// A step about a delivered revision.
#[derive(Debug, Clone, PartialEq)]
enum Said {
    /// This tab's write, delivered `after_ms` after it was sent.
    Ours { rev: u64, after_ms: f64 },
    /// Another client's.
    Elsewhere { rev: u64 },
    /// The value written, by this tab or another client: which one cannot be told.
    Unsure { rev: u64 },
}

impl InFlight {
    fn new(value: bool, sent_at: f64) -> InFlight {
        InFlight {
            value,
            sent_at,
            rev: None,
            early: Vec::new(),
        }
    }

    /// The watch delivered `rev`, holding `state`, at `at`: what to say now (nothing while it
    /// cannot tell yet), and whether this write is settled (its revision was delivered).
    fn delivered(&mut self, rev: u64, state: &Flag, at: f64) -> (Option<Said>, bool) {
        match self.rev {
            Some(want) if want == rev => (
                Some(Said::Ours {
                    rev,
                    after_ms: at - self.sent_at,
                }),
                true,
            ),
            None if *state == Flag::from(self.value) => match self.early.len() < MAX_EARLY {
                true => {
                    self.early.push((rev, at));
                    (None, false)
                }
                false => (Some(Said::Unsure { rev }), false),
            },
            _ => (Some(Said::Elsewhere { rev }), false),
        }
    }

    /// The put was acknowledged as `rev`: what to say about the deliveries that came before, and
    /// whether this write is settled.
    fn acknowledged(&mut self, rev: u64) -> (Vec<Said>, bool) {
        self.rev = Some(rev);
        let sent_at = self.sent_at;
        let said: Vec<Said> = self
            .early
            .drain(..)
            .map(|(got, at)| match got == rev {
                true => Said::Ours {
                    rev: got,
                    after_ms: at - sent_at,
                },
                false => Said::Elsewhere { rev: got },
            })
            .collect();
        let settled = said.iter().any(|s| matches!(s, Said::Ours { .. }));
        (said, settled)
    }

    /// The put failed, or its answer was lost: an early delivery may still have been this
    /// write (stored, then the answer did not arrive), or another client's.
    fn failed(&mut self) -> Vec<Said> {
        self.early
            .drain(..)
            .map(|(rev, _)| Said::Unsure { rev })
            .collect()
    }
}

/// Writes `said` to the card's steps; `text` is the value delivered.
fn say(log: StepLog, said: &Said, text: &str) {
    match said {
        Said::Ours { rev, after_ms } => log.ok(
            "KV → tab",
            format!(
                "the watch delivered revision {rev} ({text}) {after_ms:.0} ms after the put was sent; every tab watching gets it"
            ),
        ),
        Said::Elsewhere { rev } => log.info(
            "KV → tab",
            format!("{KEY} = {text} (revision {rev}), written elsewhere"),
        ),
        Said::Unsure { rev } => log.info(
            "KV → tab",
            format!("{KEY} = {text} (revision {rev}), written here or by another client"),
        ),
    }
}

impl From<bool> for Flag {
    fn from(on: bool) -> Flag {
        if on {
            Flag::On
        } else {
            Flag::Off
        }
    }
}

/// The banner an app shows while the site is in maintenance.
#[component]
pub fn MaintenanceBanner(client: Client) -> impl IntoView {
    // The hook follows the app's connection, which is this client.
    let _ = client;
    let flag = use_kv_key(BUCKET, KEY);
    let state = Memo::new(move |_| flag.entry.with(|e| Flag::of(e.as_ref())));
    view! {
        {move || match state.get() {
            Flag::On => view! {
                <div class="pg-flag-banner" role="status" data-testid="pg-flag-banner">
                    <span class="pg-flag-banner-icon" aria-hidden="true">"⚠"</span>
                    <span>
                        <strong>"Maintenance in progress. "</strong>
                        "Some features may be unavailable for a few minutes."
                    </span>
                </div>
            }
            .into_any(),
            Flag::Invalid(text) => view! {
                <p class="pg-flag-invalid small" role="status" data-testid="pg-flag-invalid">
                    {format!("{KEY} = {}: not a flag (true or false); no banner.", quoted(&text))}
                </p>
            }
            .into_any(),
            Flag::Off | Flag::Unset => ().into_any(),
        }}
    }
}

/// The admin side: a switch that writes the flag, and what happened, step by step.
#[component]
pub fn FlagCard(client: Client) -> impl IntoView {
    let client = StoredValue::new_local(client);
    let flag = use_kv_key(BUCKET, KEY);
    let log = StepLog::new();
    let state = Memo::new(move |_| flag.entry.with(|e| Flag::of(e.as_ref())));
    let revision = Memo::new(move |_| flag.entry.with(|e| e.as_ref().map(|e| e.revision)));
    // This tab's write, from when it was sent until the watch has delivered it.
    let in_flight = StoredValue::new(None::<InFlight>);
    let writing = RwSignal::new(false);
    let input = NodeRef::<leptos::html::Input>::new();

    // Every change the watch delivers is a step: this tab's writes and everyone else's. The
    // initial value (before `loaded`) is not a change.
    Effect::new(move |previous: Option<(Option<u64>, bool)>| {
        let (rev, loaded) = (revision.get(), flag.loaded.get());
        if matches!(previous, Some((before, true)) if before != rev) {
            let state = state.get_untracked();
            let text = state.describe();
            match rev {
                Some(got) => {
                    let at = log.elapsed();
                    let mut said = Some(Said::Elsewhere { rev: got });
                    in_flight.update_value(|f| {
                        if let Some(write) = f.as_mut() {
                            let settled;
                            (said, settled) = write.delivered(got, &state, at);
                            if settled {
                                *f = None;
                            }
                        }
                    });
                    if let Some(said) = said {
                        say(log, &said, &text);
                    }
                }
                None => log.info("KV → tab", format!("{KEY} deleted or purged elsewhere")),
            }
        }
        (rev, loaded)
    });

    let write = move |on: bool| {
        if writing.get_untracked() {
            return;
        }
        log.start();
        let Some(store) = flag.try_store().flatten() else {
            log.fail(
                "tab",
                "not connected to the bucket yet: wait for the connection",
            );
            return;
        };
        let Some(client) = client.try_get_value() else {
            return;
        };
        let value = if on { "true" } else { "false" };
        log.info(
            "tab → KV",
            format!("put {BUCKET}/{KEY} = {value} (a publish to $KV.{BUCKET}.{KEY})"),
        );
        writing.set(true);
        let sent_at = log.elapsed();
        in_flight.set_value(Some(InFlight::new(on, sent_at)));
        leptos::task::spawn_local(async move {
            let text = Flag::from(on).describe();
            // While the server is away the put is sent again until it is back (nats-ws's publish
            // deadline): said at once, not after the deadline.
            let put = store.put(KEY, value.as_bytes().to_vec()).fuse();
            let mut statuses = client.status_stream().fuse();
            futures::pin_mut!(put);
            let mut said_away = false;
            let result = loop {
                futures::select! {
                    result = put => break result,
                    status = statuses.select_next_some() => {
                        if !status.is_connected() && !said_away {
                            said_away = true;
                            log.info(
                                "tab → KV",
                                format!(
                                    "the server is not reachable: the put is sent again once it is back, for {} s at most",
                                    client.jetstream().publish_deadline().as_secs()
                                ),
                            );
                        }
                    }
                }
            };
            match result {
                Ok(rev) => {
                    log.ok(
                        "KV → tab",
                        format!(
                            "stored as revision {rev}: the put was acknowledged in {:.0} ms",
                            log.elapsed() - sent_at
                        ),
                    );
                    let mut said = Vec::new();
                    in_flight.try_update_value(|f| {
                        if let Some(write) = f.as_mut() {
                            let settled;
                            (said, settled) = write.acknowledged(rev);
                            if settled {
                                *f = None;
                            }
                        }
                    });
                    for said in &said {
                        say(log, said, &text);
                    }
                }
                Err(e) => {
                    let said = in_flight
                        .try_update_value(|f| f.take().map(|mut w| w.failed()))
                        .flatten()
                        .unwrap_or_default();
                    for said in &said {
                        say(log, said, &text);
                    }
                    log.fail("KV → tab", format!("the put failed: {e}"));
                }
            }
            writing.try_set(false);
        });
    };

    // The switch shows what the key holds: a click asks for the other value and the switch
    // follows once the watch delivers it (a failed write leaves it as it was).
    let on_toggle = move |_| {
        let Some(el) = input.get_untracked() else {
            return;
        };
        let want = el.checked();
        el.set_checked(state.get_untracked() == Flag::On);
        write(want);
    };

    view! {
        <section class="card pg-card" aria-labelledby="pg-flag-title">
            <div class="card-head">
                <h2 id="pg-flag-title">"5 · Feature flag"</h2>
            </div>
            <p class="muted small">
                "The KV key " <code>{KEY}</code> " of bucket " <code>{BUCKET}</code>
                " is a flag: " <code>"true"</code> " shows the maintenance banner above, in every tab, at once. "
                "Flip it here or from any NATS client."
            </p>
            <div class="pg-controls">
                <label class="switch">
                    <input
                        node_ref=input
                        type="checkbox"
                        role="switch"
                        class="pg-switch"
                        data-testid="pg-flag-toggle"
                        prop:checked=move || state.get() == Flag::On
                        disabled=move || !flag.loaded.get() || writing.get()
                        on:change=on_toggle
                    />
                    "Maintenance mode"
                </label>
                <span class="muted small">
                    "Now: " <code data-testid="pg-flag-value">{move || {
                        if flag.loaded.get() { state.get().describe() } else { "…".to_owned() }
                    }}</code>
                    {move || revision.get().map(|r| format!(" · revision {r}"))}
                </span>
            </div>
            <FlagError flag/>
            <StepList log testid="pg-flag-step"/>
        </section>
    }
}

/// The watch's or the bucket's trouble, while it lasts.
#[component]
fn FlagError(flag: UseKvKeyReturn) -> impl IntoView {
    view! {
        <Show when=move || flag.error.get().is_some()>
            <p class="error" role="alert" data-testid="pg-flag-error">{move || flag.error.get()}</p>
        </Show>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_after_the_acknowledgement_is_ours_by_its_revision() {
        let mut w = InFlight::new(true, 10.0);
        assert_eq!(w.acknowledged(7), (vec![], false));
        // Another client's identical write, then ours.
        assert_eq!(
            w.delivered(6, &Flag::On, 12.0),
            (Some(Said::Elsewhere { rev: 6 }), false)
        );
        assert_eq!(
            w.delivered(7, &Flag::On, 15.0),
            (
                Some(Said::Ours {
                    rev: 7,
                    after_ms: 5.0
                }),
                true
            )
        );
    }

    #[test]
    fn an_identical_write_delivered_before_the_acknowledgement_is_not_taken_for_ours() {
        let mut w = InFlight::new(true, 10.0);
        // Before the acknowledgement nothing is said about a delivery of the value written…
        assert_eq!(w.delivered(6, &Flag::On, 11.0), (None, false));
        // …but a different value cannot be ours.
        assert_eq!(
            w.delivered(8, &Flag::Off, 12.0),
            (Some(Said::Elsewhere { rev: 8 }), false)
        );
        assert_eq!(w.delivered(9, &Flag::On, 13.0), (None, false));
        // The acknowledgement tells them apart: 9 was ours, 6 another client's.
        assert_eq!(
            w.acknowledged(9),
            (
                vec![
                    Said::Elsewhere { rev: 6 },
                    Said::Ours {
                        rev: 9,
                        after_ms: 3.0
                    }
                ],
                true
            )
        );
    }

    #[test]
    fn a_write_whose_revision_was_not_delivered_yet_stays_in_flight() {
        let mut w = InFlight::new(false, 0.0);
        assert_eq!(w.delivered(3, &Flag::Off, 1.0), (None, false));
        assert_eq!(w.acknowledged(4), (vec![Said::Elsewhere { rev: 3 }], false));
        assert_eq!(
            w.delivered(4, &Flag::Off, 2.0),
            (
                Some(Said::Ours {
                    rev: 4,
                    after_ms: 2.0
                }),
                true
            )
        );
    }

    #[test]
    fn past_a_few_early_deliveries_or_after_a_failed_put_the_card_does_not_guess() {
        let mut w = InFlight::new(true, 0.0);
        for rev in 1..=MAX_EARLY as u64 {
            assert_eq!(w.delivered(rev, &Flag::On, 1.0), (None, false));
        }
        let over = MAX_EARLY as u64 + 1;
        assert_eq!(
            w.delivered(over, &Flag::On, 1.0),
            (Some(Said::Unsure { rev: over }), false),
            "more than MAX_EARLY are not kept"
        );
        let said = w.failed();
        assert_eq!(said.len(), MAX_EARLY);
        assert!(said.iter().all(|s| matches!(s, Said::Unsure { .. })));
        assert!(w.early.is_empty());
    }

    #[test]
    fn true_and_false_are_flags_anything_else_is_shown_as_is() {
        assert_eq!(Flag::read(Some(b"true")), Flag::On);
        assert_eq!(Flag::read(Some(b"false")), Flag::Off);
        assert_eq!(Flag::read(Some(b" True\n")), Flag::On);
        assert_eq!(Flag::read(None), Flag::Unset);
        assert_eq!(Flag::read(Some(b"maybe")), Flag::Invalid("maybe".into()));
        assert_eq!(Flag::read(Some(b"maybe")).describe(), "'maybe': not a flag");
        assert_eq!(Flag::read(Some(b"")).describe(), "'': not a flag");
        assert_eq!(
            Flag::read(Some(&[0xff, b'1'])),
            Flag::Invalid("\u{fffd}1".into())
        );
        let long = "y".repeat(100);
        assert!(Flag::read(Some(long.as_bytes()))
            .describe()
            .starts_with(&format!("'{}…'", "y".repeat(60))));
    }
}

//! `/config`: the `config.*` keys of KV `via_config`, live, whoever writes them.

use std::collections::BTreeMap;

use bytes::Bytes;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_nats::{
    bucket_gone, use_kv_watch, use_nats, write_failure, KvChange, Waiting, WriteFailure,
};

use crate::model::{next_config_value, CONFIG_BUCKET, CONFIG_KEYS};
use crate::use_identity;

/// The header that names the app user behind a config write; other clients do not set it.
pub const WRITER_HEADER: &str = "Via-User";

/// What the "last change" panel shows.
#[derive(Clone, PartialEq, Eq)]
struct Shown {
    key: String,
    old: String,
    new: String,
    who: String,
    when: String,
}

fn describe(change: &KvChange) -> Shown {
    let text = |e: &Option<nats_ws::kv::Entry>| match e {
        Some(e) => e.text().unwrap_or("(binary)").to_owned(),
        None => "(none)".to_owned(),
    };
    let who = change
        .new
        .as_ref()
        .and_then(|e| e.headers.as_ref())
        .and_then(|h| h.get(WRITER_HEADER))
        .map(str::to_owned)
        .unwrap_or_else(|| "another client".to_owned());
    let when = String::from(js_sys::Date::new_0().to_locale_time_string("en-GB"));
    Shown {
        key: change.key.clone(),
        old: text(&change.old),
        new: text(&change.new),
        who,
        when,
    }
}

/// Compare-and-set tries of one click before it gives up (each lost only to another write).
const STEP_ATTEMPTS: usize = 10;

/// How the clicks of each key go, app-wide: a click's task outlives the page that made it (the
/// step is written once it can be), so what it says is kept here, not in the page, and a page
/// opened later shows it on the key's row.
#[derive(Clone, Copy)]
pub struct ConfigSteps(RwSignal<BTreeMap<String, KeySteps>>);

/// The clicks of one key still on their way, and what the last word on them was.
#[derive(Clone, Default, PartialEq)]
struct KeySteps {
    waiting: usize,
    said: Option<String>,
}

/// Called once, with the app: see [`ConfigSteps`].
pub fn provide_config_steps() {
    provide_context(ConfigSteps(RwSignal::new(BTreeMap::new())));
}

impl ConfigSteps {
    fn begin(self, key: &str) {
        self.0
            .update(|m| m.entry(key.to_owned()).or_default().waiting += 1);
    }

    fn say(self, key: &str, said: String) {
        self.0
            .update(|m| m.entry(key.to_owned()).or_default().said = Some(said));
    }

    /// One click is done: `said` is its outcome (`None`: written).
    fn end(self, key: &str, said: Option<String>) {
        self.0.update(|m| {
            let steps = m.entry(key.to_owned()).or_default();
            steps.waiting = steps.waiting.saturating_sub(1);
            steps.said = said;
            if *steps == KeySteps::default() {
                m.remove(key);
            }
        });
    }

    /// What the row of `key` says of its clicks: why one waits, or how the last one ended if
    /// not written (a click on its way without trouble says nothing).
    fn shown(self, key: &str) -> Option<String> {
        self.0.with(|m| {
            let steps = m.get(key)?;
            let said = steps.said.clone()?;
            Some(match steps.waiting {
                0 | 1 => said,
                n => format!("{said} ({n} clicks waiting)"),
            })
        })
    }
}

#[component]
pub fn ConfigPage() -> impl IntoView {
    let config = use_kv_watch(CONFIG_BUCKET, "config.>");
    let nats = use_nats();
    let identity = use_identity();
    let steps = expect_context::<ConfigSteps>();
    let last = Memo::new(move |_| config.last_change.get().as_ref().map(describe));

    // The known keys first, in their order, then any other config.* key someone wrote.
    let keys = Memo::new(move |_| {
        let mut keys: Vec<String> = CONFIG_KEYS.iter().map(|(k, _)| (*k).to_owned()).collect();
        config.entries.with(|map| {
            keys.extend(
                map.keys()
                    .filter(|k| !CONFIG_KEYS.iter().any(|(known, _)| known == k))
                    .cloned(),
            )
        });
        keys
    });

    // Keys nobody has set yet get their default (the first choice), once; `create` never
    // overwrites a value someone else wrote meanwhile.
    let seeded = StoredValue::new(false);
    Effect::new(move |_| {
        if !config.loaded.get() || seeded.get_value() {
            return;
        }
        let Some(store) = config.store() else { return };
        seeded.set_value(true);
        let missing: Vec<(&str, &str)> = config.entries.with_untracked(|m| {
            CONFIG_KEYS
                .iter()
                .filter(|(k, _)| !m.contains_key(*k))
                .map(|(k, choices)| (*k, choices[0]))
                .collect()
        });
        let mut headers = nats_ws::HeaderMap::new();
        headers.insert(
            WRITER_HEADER,
            format!("{} (default)", identity.get_untracked()),
        );
        spawn_local(async move {
            for (key, value) in missing {
                let _ = store.create_with_headers(key, value, &headers).await;
            }
        });
    });

    let toggle = move |key: String| {
        let choices = CONFIG_KEYS
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, c)| *c)
            .unwrap_or(&["true", "false"]);
        let mut headers = nats_ws::HeaderMap::new();
        headers.insert(WRITER_HEADER, identity.get_untracked());
        // Each click moves the value one step from what is stored when it is written (read, then
        // compare-and-set, again on a conflict), not from what the page showed: two quick clicks
        // make two steps, and a change from another tab meanwhile is stepped from, not overwritten.
        // A click made before the bucket is bound, while the server is unreachable, or while
        // the connection is replaced, is written once it can be, over the app's connection then
        // current (not the page's: it goes on when the page is left); so is one that lost to
        // other writers again and again. Only a refusal for what it is (permission) drops it.
        steps.begin(&key);
        spawn_local(async move {
            let step = |live: Option<&nats_ws::kv::Entry>| {
                Bytes::from(next_config_value(choices, live.and_then(|e| e.text())))
            };
            // A step that may have been stored is not made again: it could be two.
            let retry =
                |failure| matches!(failure, WriteFailure::Connection | WriteFailure::Contention);
            let waiting = |why: Waiting<'_>| {
                steps.say(
                    &key,
                    match why {
                        Waiting::NotConnected => format!(
                        "{key} not changed yet: not connected; it is once the server is reachable"
                    ),
                        Waiting::Failed(e) if bucket_gone(e) => {
                            format!("{key} not changed yet: {e}")
                        }
                        Waiting::Failed(e) => {
                            format!("{key} not changed yet: {e}; it is once it can be")
                        }
                    },
                )
            };
            let stepped = nats
                .write_until(CONFIG_BUCKET, retry, waiting, |store| {
                    let (key, headers) = (key.clone(), headers.clone());
                    async move {
                        store
                            .update_with_headers(&key, STEP_ATTEMPTS, &headers, step)
                            .await
                    }
                })
                .await;
            let said = match stepped {
                Ok(_) => None,
                Err(e) if write_failure(&e) == WriteFailure::Unknown => Some(format!(
                    "{key} may or may not have changed (see its value): {e}"
                )),
                Err(e) => Some(format!("{key} not changed: {e}")),
            };
            steps.end(&key, said);
        });
    };

    view! {
        <section class="page-head">
            <h1>"Config"</h1>
            <p class="lede">
                "Keys " <code>"config.*"</code> " of KV " <code>"via_config"</code>
                ", watched live: a value written by any NATS client shows up here at once."
            </p>
        </section>
        <div class="grid-2">
            <section class="card">
                <h2>"Values"</h2>
                <Show when=move || config.error.get().is_some()>
                    <p class="error">{move || config.error.get()}</p>
                </Show>
                <table class="config-table">
                    <thead>
                        <tr>
                            <th>"Key"</th>
                            <th>"Value"</th>
                            <th><span class="sr-only">"Change"</span></th>
                        </tr>
                    </thead>
                    <tbody>
                        <For
                            each=move || keys.get()
                            key=|k| k.clone()
                            children=move |key| {
                                let short = key.strip_prefix("config.").unwrap_or(&key).to_owned();
                                let value = {
                                    let key = key.clone();
                                    move || {
                                        config.entries.with(|m| {
                                            m.get(&key).map(|e| e.text().unwrap_or("(binary)").to_owned())
                                        })
                                    }
                                };
                                let shown = {
                                    let value = value.clone();
                                    move || match value() {
                                        Some(v) => v,
                                        None if config.loaded.get() => "(not set)".to_owned(),
                                        None => "…".to_owned(),
                                    }
                                };
                                let is_unset = {
                                    let value = value.clone();
                                    move || value().is_none()
                                };
                                let next = {
                                    let key = key.clone();
                                    move || {
                                        let choices = CONFIG_KEYS
                                            .iter()
                                            .find(|(k, _)| *k == key)
                                            .map(|(_, c)| *c)
                                            .unwrap_or(&["true", "false"]);
                                        format!("→ {}", next_config_value(choices, value().as_deref()))
                                    }
                                };
                                let label = {
                                    let (key, next) = (key.clone(), next.clone());
                                    move || format!("Set {key} {}", next())
                                };
                                let key_for_click = key.clone();
                                let step_said = {
                                    let key = key.clone();
                                    Memo::new(move |_| steps.shown(&key))
                                };
                                let step_testid = format!("config-step-{short}");
                                view! {
                                    <tr>
                                        <td><code>{key.clone()}</code></td>
                                        <td>
                                            <span
                                                class="value"
                                                class:unset=is_unset
                                                data-testid=format!("config-value-{short}")
                                            >
                                                {shown}
                                            </span>
                                            <Show when=move || step_said.with(Option::is_some)>
                                                <p
                                                    class="error small"
                                                    role="status"
                                                    data-testid=step_testid.clone()
                                                >
                                                    {move || step_said.get()}
                                                </p>
                                            </Show>
                                        </td>
                                        <td class="right">
                                            <button
                                                class="secondary"
                                                data-testid=format!("config-toggle-{short}")
                                                title="Write the next value"
                                                aria-label=label
                                                on:click=move |_| toggle(key_for_click.clone())
                                            >
                                                {next}
                                            </button>
                                        </td>
                                    </tr>
                                }
                            }
                        />
                    </tbody>
                </table>
            </section>
            <section class="card" data-testid="config-last-change">
                <h2>"Last change"</h2>
                {move || match last.get() {
                    None => view! { <p class="muted">"No change since this page opened."</p> }.into_any(),
                    Some(s) => view! {
                        <dl class="last-change">
                            <dt>"Key"</dt>
                            <dd><code>{s.key}</code></dd>
                            <dt>"Change"</dt>
                            <dd>
                                <span class="old">{s.old}</span>
                                " → "
                                <span class="new">{s.new}</span>
                            </dd>
                            <dt>"By"</dt>
                            <dd>{s.who}</dd>
                            <dt>"At"</dt>
                            <dd>{s.when}</dd>
                        </dl>
                    }
                    .into_any(),
                }}
            </section>
        </div>
    }
}

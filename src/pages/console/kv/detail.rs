//! The open key of a bucket: its value in full (live, from the bucket's watch) and its history,
//! read again whenever the watch sees the key change.

use futures::StreamExt;
use leptos::prelude::*;

use crate::pages::console::bidi::shown;
use leptos_nats::spawn_while_mounted;
use nats_ws::kv::{Entry, KvError, Store};

use super::bucket::{entry_of, Entries, RETRY};
use super::logic::{epoch_ms, full_value, operation_name, preview_line, PREVIEW_CHARS};
use crate::components::clock::date_and_time;

/// The shortest time between two reads of the open key's history.
const HISTORY_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

#[component]
pub(super) fn KeyDetail(
    key: String,
    /// The bucket's watched keys with a value.
    entries: Entries,
    /// Notified when this key changes (a value or a marker) or the bucket is read again.
    changed: Trigger,
    store: RwSignal<Option<Store>, LocalStorage>,
) -> impl IntoView {
    let entry = {
        let key = key.clone();
        Memo::new(move |_| entry_of(entries, &key))
    };
    let history = RwSignal::new(Vec::<Entry>::new());
    let error = RwSignal::new(None::<String>);
    {
        // Read again whenever the watch sees the key change (a value or a marker), by one task,
        // one read at a time: the changes that come during a read make one read after it.
        // (A read per change, each aborting the one before, would never finish while the key is
        // written without pause, and would make and drop a consumer each time.)
        let (read_again, mut reads) = futures::channel::mpsc::unbounded::<()>();
        let try_again = read_again.clone();
        Effect::new(move |_| {
            changed.track();
            store.track();
            let _ = read_again.unbounded_send(());
        });
        let key = key.clone();
        spawn_while_mounted(async move {
            while reads.next().await.is_some() {
                // At most once a second: a key written without pause would otherwise be read
                // (a consumer made and deleted) at the speed of a round trip.
                let paced = gloo_timers::future::sleep(HISTORY_EVERY);
                while reads.try_recv().is_ok() {}
                // The bucket's store as it is now (it is bound again after a recreation).
                let Some(store) = store.get_untracked() else {
                    // No bucket bound (deleted by someone, the page says so): no history either.
                    history.set(Vec::new());
                    continue;
                };
                match store.history(&key).await {
                    Ok(mut list) => {
                        list.reverse();
                        history.set(list);
                        error.set(None);
                    }
                    // The server out of reach (a read says so within its timeout): read again
                    // until it is back, as the bucket's watch picks up by itself.
                    Err(KvError::JetStream(e)) if e.is_transient() => {
                        error.set(Some(format!(
                            "could not read the history of {key}, read again once the server \
                             answers: {e}"
                        )));
                        gloo_timers::future::sleep(RETRY).await;
                        let _ = try_again.unbounded_send(());
                    }
                    Err(e) => error.set(Some(format!("could not read the history of {key}: {e}"))),
                }
                paced.await;
            }
        });
    }
    let view_of = Memo::new(move |_| entry.with(|e| e.as_ref().map(|e| full_value(&e.value))));
    let heading = NodeRef::new();
    crate::components::reveal_when_mounted(heading);
    view! {
        <section class="card" data-testid="kv-detail">
            <div class="card-head">
                <h2 tabindex="-1" node_ref=heading>"Key " <code>{key.clone()}</code></h2>
                <span class="muted small">
                    {move || match (entry.get(), view_of.get()) {
                        (Some(e), Some(v)) => format!("revision {} · {} · {} bytes", e.revision, v.kind(), e.value.len()),
                        _ => "no value now (deleted or purged)".to_owned(),
                    }}
                </span>
            </div>
            <pre class="kv-full" data-testid="kv-value-full">
                {move || view_of.with(|v| v.as_ref().map(|v| shown(v.body())))}
            </pre>
            <h3>"History, newest first"</h3>
            <Show when=move || error.get().is_some()>
                <p class="error notice-inline" data-testid="kv-history-error">{move || error.get()}</p>
            </Show>
            <div class="table-wrap">
                <table class="proc-table" data-testid="kv-history">
                    <thead>
                        <tr>
                            <th class="num">"Revision"</th>
                            <th>"Operation"</th>
                            <th>"Time"</th>
                            <th>"Value"</th>
                        </tr>
                    </thead>
                    <tbody>
                        <For
                            each=move || history.get()
                            key=|e| e.revision
                            children=|e| {
                                view! {
                                    <tr data-testid="kv-history-row">
                                        <td class="num">{e.revision}</td>
                                        <td>{operation_name(e.operation)}</td>
                                        <td class="kv-time">{epoch_ms(e.created).map(|ms| date_and_time(ms, true)).unwrap_or_default()}</td>
                                        <td class="kv-value">{shown(&preview_line(&e.value, PREVIEW_CHARS))}</td>
                                    </tr>
                                }
                            }
                        />
                    </tbody>
                </table>
            </div>
        </section>
    }
}

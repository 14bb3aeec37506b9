//! Key-Value against a real nats-server.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{within, TestServer};
use futures::StreamExt;
use nats_ws::kv::{KvConfig, KvError, Operation, WatchEvent};
use nats_ws::Options;

#[tokio::test]
async fn revision_chain_and_conflicts() {
    let server = TestServer::start();
    let client = nats_ws::connect(Options::new(server.ws_url()))
        .await
        .unwrap();
    let js = client.jetstream();
    let kv = js
        .create_key_value(KvConfig::new("chain").history(5))
        .await
        .unwrap();
    // A(0)→1, B(0)→2, A(1)→3, A(3)→4, A(1) rejected.
    assert_eq!(kv.create("A", "a1").await.unwrap(), 1);
    assert_eq!(kv.create("B", "b1").await.unwrap(), 2);
    assert_eq!(kv.update("A", "a2", 1).await.unwrap(), 3);
    assert_eq!(kv.update("A", "a3", 3).await.unwrap(), 4);
    assert_eq!(
        kv.update("A", "stale", 1).await,
        Err(KvError::WrongLastRevision {
            key: "A".into(),
            expected: 1
        })
    );
    let a = kv.get("A").await.unwrap().unwrap();
    assert_eq!((a.text(), a.revision), (Some("a3"), 4));
    assert_eq!(kv.get("missing").await.unwrap(), None);
    assert!(matches!(
        kv.create("A", "again").await,
        Err(KvError::KeyExists { .. })
    ));
    kv.delete("A").await.unwrap();
    assert_eq!(kv.get("A").await.unwrap(), None);
    assert_eq!(kv.create("A", "reborn").await.unwrap(), 6);
    assert_eq!(
        kv.get_revision("A", 3).await.unwrap().unwrap().text(),
        Some("a2")
    );
    let ops: Vec<Operation> = kv
        .history("A")
        .await
        .unwrap()
        .iter()
        .map(|e| e.operation)
        .collect();
    assert_eq!(
        ops,
        [
            Operation::Put,
            Operation::Put,
            Operation::Put,
            Operation::Delete,
            Operation::Put
        ]
    );
    let mut keys = kv.keys().await.unwrap();
    keys.sort();
    assert_eq!(keys, ["A", "B"]);
}

#[tokio::test]
async fn watch_initial_values_then_updates_in_order() {
    let server = TestServer::start();
    let client = nats_ws::connect(Options::new(server.ws_url()))
        .await
        .unwrap();
    let kv = client
        .jetstream()
        .create_key_value(KvConfig::new("watched"))
        .await
        .unwrap();
    for k in ["x", "y", "z"] {
        kv.put(k, k).await.unwrap();
    }
    let mut watch = kv.watch_all().unwrap();
    // Distinct keys: with history 1 an overwritten revision is gone before a watcher could see it.
    let writer = {
        let kv = kv.clone();
        tokio::spawn(async move {
            let puts = (0..100).map(|i| {
                let kv = kv.clone();
                async move { kv.put(&format!("k{i}"), format!("{i}")).await.unwrap() }
            });
            futures::future::join_all(puts).await
        })
    };
    let mut entries = Vec::new();
    let mut marker_at = None;
    within(20, "103 entries", async {
        while entries.len() < 103 {
            match watch.next().await.unwrap().unwrap() {
                WatchEvent::Entry(e) => entries.push(e),
                WatchEvent::InitialDone => marker_at = Some(entries.len()),
            }
        }
    })
    .await;
    writer.await.unwrap();
    assert_eq!(
        marker_at,
        Some(3),
        "the marker follows the 3 initial values"
    );
    let revisions: Vec<u64> = entries.iter().map(|e| e.revision).collect();
    assert!(
        revisions.windows(2).all(|w| w[0] < w[1]),
        "out of order: {revisions:?}"
    );
    assert_eq!(revisions.len(), 103);
}

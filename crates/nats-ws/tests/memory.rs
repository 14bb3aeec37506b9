#![cfg(not(target_arch = "wasm32"))]
//! What a subscription nobody reads holds, measured by the bytes this process has allocated and
//! not freed (a counting allocator: this binary holds this one test, so nothing else allocates
//! meanwhile).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use common::{connect, within, TestServer};
use futures::StreamExt;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is System's, with the caller's arguments; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const ROUNDS: usize = 2_000;
const BIG: usize = 32 * 1024;

/// Publishes `ROUNDS` × (a 4-byte message on `memory.small`, a 32 KiB one on `memory.big`) and
/// reads the big ones from `busy`; returns it once all are read.
async fn traffic(
    publisher: &nats_ws::Client,
    mut busy: nats_ws::Subscriber,
) -> nats_ws::Subscriber {
    let big = vec![b'x'; BIG];
    let reading = tokio::spawn(async move {
        for _ in 0..ROUNDS {
            let m = busy.next().await.expect("open").expect("a message");
            assert_eq!(m.payload.len(), BIG);
        }
        busy
    });
    for i in 0..ROUNDS {
        publisher
            .publish("memory.small", format!("{i:04}"))
            .unwrap();
        publisher.publish("memory.big", big.clone()).unwrap();
        if i % 10 == 9 {
            // Paced by the server, so the publisher's own buffers stay small.
            publisher.flush().await.unwrap();
        }
    }
    publisher.flush().await.unwrap();
    within(30, "the big messages read", reading).await.unwrap()
}

/// A subscription left unread while big messages for another one come in between its own small
/// ones: it holds its messages, not the frames they came in. Before, each 4-byte message kept
/// alive the whole buffer it was parsed from (here 2 000 of them held 70 MB over WebSocket and
/// 115 MB over TCP; nats.go copies every message out of its read buffer).
#[tokio::test]
async fn an_unread_subscription_holds_its_messages_not_the_frames_they_came_in() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let publisher = connect(&server).await;
    let mut small = client.subscribe("memory.small").unwrap();
    let busy = client.subscribe("memory.big").unwrap();
    client.flush().await.unwrap();
    // The same traffic with every message read first: the buffers of both connections grow to
    // what it takes, and what is held after it is not counted below.
    let busy = traffic(&publisher, busy).await;
    for _ in 0..ROUNDS {
        within(5, "a small message", small.next())
            .await
            .unwrap()
            .unwrap();
    }
    let before = LIVE.load(Ordering::Relaxed);
    let busy = traffic(&publisher, busy).await;
    // Every small message is in (published before the last big one, on the same connection).
    client.flush().await.unwrap();
    assert_eq!(
        small.pending(),
        ROUNDS,
        "the unread subscription holds every message"
    );
    let held = LIVE.load(Ordering::Relaxed) - before;
    // About 150 bytes per small message (its bytes, its place in the queue); 2 MB is far above
    // that and far below one 32 KiB frame held per message.
    assert!(
        held < 2_000_000,
        "{held} bytes held for {ROUNDS} unread messages of 4 bytes"
    );
    drop((small, busy));
}

//! Paces a live view's redraws: what arrives after a quiet frame is drawn at once, what keeps
//! arriving is drawn at most once a frame. Without it a feed written thousands of times a second,
//! each write its own WebSocket frame, redraws once per write, keeps the tab's main thread busy and
//! shows values seconds behind (measured on /kv: BENCHMARKS.md).

use std::time::Duration;

use futures::future::{select, Either};
use futures::{Stream, StreamExt};
use gloo_timers::future::TimeoutFuture;

use crate::components::clock::monotonic_ms;

/// The shortest time between two redraws.
pub const FRAME_MS: f64 = 16.0;

/// What [`Pacer::next`] gives.
pub enum Paced<T> {
    /// The feed's next item.
    Item(T),
    /// The feed ended.
    Ended,
    /// The frame is over: draw what waits.
    Draw,
}

/// When the next redraw is due. The timer exists only while something waits, one per redraw.
pub struct Pacer {
    drawn_ms: f64,
    frame_end: Option<TimeoutFuture>,
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer {
            drawn_ms: f64::NEG_INFINITY,
            frame_end: None,
        }
    }
}

impl Pacer {
    /// The next item of `feed`; with `waiting` (something not drawn yet), [`Paced::Draw`] instead
    /// once the frame is over.
    pub async fn next<S: Stream + Unpin>(&mut self, feed: &mut S, waiting: bool) -> Paced<S::Item> {
        let next = if waiting {
            let drawn_ms = self.drawn_ms;
            let end = self.frame_end.get_or_insert_with(|| {
                let due = (drawn_ms + FRAME_MS - monotonic_ms()).max(0.0);
                gloo_timers::future::sleep(Duration::from_millis(due as u64))
            });
            match select(feed.next(), end).await {
                Either::Left((next, _)) => next,
                Either::Right(_) => {
                    // Spent: never polled again, whether or not the caller says it drew.
                    self.frame_end = None;
                    return Paced::Draw;
                }
            }
        } else {
            feed.next().await
        };
        match next {
            Some(item) => Paced::Item(item),
            None => Paced::Ended,
        }
    }

    /// Whether a redraw now keeps to the pace (the last one was a frame ago or more).
    pub fn due(&self) -> bool {
        monotonic_ms() - self.drawn_ms >= FRAME_MS
    }

    /// A redraw was made.
    pub fn drawn(&mut self) {
        self.drawn_ms = monotonic_ms();
        self.frame_end = None;
    }
}

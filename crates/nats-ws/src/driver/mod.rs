//! Drivers: what connects the sans-IO [`crate::proto::Connection`] to a real WebSocket and timers.
//!
//! A driver supplies three things — open a socket, sleep, and (optionally) notice that the
//! environment woke up — and the shared loop in `client.rs` does the rest. Two exist: `browser`
//! (wasm32, `web-sys` WebSocket, `setTimeout`) and `native` (tokio + tokio-tungstenite).

use std::future::Future;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;

#[cfg(target_arch = "wasm32")]
pub mod browser;
#[cfg(not(target_arch = "wasm32"))]
pub mod native;

/// An open WebSocket carrying binary frames.
pub trait Socket: Unpin {
    /// Owned, so the parser can adopt the frame's bytes without copying them.
    type Frame: Into<Vec<u8>>;

    /// The next frame; `Err` with a human-readable detail once the socket is closed or failed.
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Self::Frame, String>>;

    /// Ready when the socket takes another frame ([`Socket::start_send`]); may write out what it
    /// holds meanwhile (as `Sink::poll_ready`).
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), String>>;

    /// Queues one binary frame; only after `poll_ready` said ready.
    fn start_send(&mut self, data: Bytes) -> Result<(), String>;

    /// Writes out every frame queued so far.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), String>>;
}

/// What a runtime provides to the driver loop.
pub trait Driver {
    type Socket: Socket;
    type Sleep: Future<Output = ()> + Unpin;

    /// Opens a WebSocket; `Err` with a human-readable detail if it could not be opened.
    fn connect(&self, url: &str) -> impl Future<Output = Result<Self::Socket, String>> + 'static;

    fn sleep(&self, duration: Duration) -> Self::Sleep;

    /// Signs the server's nonce for an NKey or JWT user ([`crate::proto::Transmit::Sign`]).
    #[cfg(feature = "nkeys")]
    fn sign(
        &self,
        request: crate::proto::SignRequest,
    ) -> impl Future<Output = Result<crate::proto::Signed, String>> + 'static;

    /// Ready when the environment suggests checking the connection now (browser back online, tab
    /// visible again).
    fn poll_wake(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

//! NATS over WebSocket, for the browser (wasm32) and native (tokio) alike.
//!
//! - [`proto`]: the sans-IO core — parser, encoder, and the [`proto::Connection`] state machine that
//!   decides everything (handshake, keepalive, reconnect schedule, resubscription, publish buffering,
//!   request/reply, dedup) without touching a socket or a clock.
//! - [`Client`]: the async handle applications use, the same on both targets.
//! - [`driver`]: the loops that connect the core to a WebSocket and timers — `web-sys` in the
//!   browser, `tokio-tungstenite` natively.
//!
//! Features, all on by default: `nkeys` (NKey / JWT sign-in), `jetstream`, `kv` (implies
//! `jetstream`) and `service`. Without them (`default-features = false`) the crate is the core
//! alone — connect, publish, subscribe, request — with no JSON library and no ed25519.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use futures::StreamExt;
//! let client = nats_ws::connect(nats_ws::Options::new("ws://127.0.0.1:8080")).await?;
//! let mut sub = client.subscribe("greet.*")?;
//! client.publish("greet.joe", "hello")?;
//! let msg = sub.next().await.unwrap()?;
//! assert_eq!(msg.payload, "hello");
//! # Ok(()) }
//! ```

mod auth;
mod client;
pub mod driver;
mod error;
mod header;
#[cfg(feature = "jetstream")]
pub mod jetstream;
#[cfg(feature = "kv")]
pub mod kv;
mod message;
mod options;
pub mod proto;
#[cfg(any(feature = "nkeys", feature = "jetstream"))]
mod rfc4648;
pub mod rt;
#[cfg(feature = "service")]
pub mod service;
mod subject;
mod text;
#[cfg(any(feature = "jetstream", feature = "service"))]
mod time;

pub use auth::{Auth, Authenticator};
pub use client::{Client, ClientEvent, Subscriber, DRAIN_TIMEOUT};
pub use error::{
    ClosedError, ConnectionError, CredentialsError, HeaderError, ParseError, PublishError,
    RequestError, ServerError, SubjectError, SubscribeError,
};
pub use header::{status, HeaderMap};
pub use message::Message;
pub use options::{Options, ReconnectPolicy};
pub use proto::{Event, Status, SubscribeOptions};
pub use subject::{
    subject_matches, validate_publish_subject, validate_queue_group, validate_subscribe_subject,
    Subject,
};

#[cfg(target_arch = "wasm32")]
pub use driver::browser::{connect, start};
#[cfg(not(target_arch = "wasm32"))]
pub use driver::native::{connect, start};

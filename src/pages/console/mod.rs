//! The console: pages that show and steer the server and what runs next to it — the message
//! monitor, JetStream streams, KV buckets, NATS services and their dependency graph, the
//! processes via-agent supervises and the leaf nodes it starts. Everything comes from NATS itself
//! (subscriptions, the JetStream API, `$SRV`, KV watches), so every page works with nothing but the
//! browser and nats-server, and all tabs agree. One page per file.

pub mod graph;
pub mod kv;
pub mod monitor;
pub mod processes;
pub mod scale;
pub mod server;
pub mod services;
pub mod streams;

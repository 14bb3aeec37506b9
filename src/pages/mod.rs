//! The pages, grouped: `demos` (users, chat, counter, config, themes, workers), `console`
//! (monitor, streams, KV, services, graph, processes, scale) and `playground` (the six classic
//! NATS experiments, one card each). One page per file, or a folder for a page with parts.

pub mod console;
pub mod demos;
pub mod lazy;
pub mod playground;

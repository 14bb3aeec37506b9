//! A real `nats-server` per test for the workspace's native integration tests (nats-ws, via-agent,
//! via-worker, via-playground):
//! free ports on 127.0.0.1, its own store directory, stopped and cleaned up on drop. What only one
//! crate's tests need (peers, clients, the agent binary) stays in that crate's `tests/common`.
//! Dev-only, never published. On wasm32 only [`jwt`] (the browser tests make their identities
//! with it too).

pub mod jwt;

#[cfg(not(target_arch = "wasm32"))]
mod native;

#[cfg(not(target_arch = "wasm32"))]
pub use native::*;

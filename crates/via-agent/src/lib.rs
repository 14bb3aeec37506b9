//! via-agent: a process supervisor that is a NATS service (`process-control`). It runs the
//! processes of `via-agent.toml` and leaf nodes on request, and reports them in KV (`processes`),
//! the service registry (`services_registry`) and on `proc.logs.<name>`. The contract (endpoints,
//! JSON, KV layouts) is the crate's README.md; the layering: [`supervisor`] knows processes, not NATS; [`agent`] knows
//! NATS, not requests; [`api`] turns requests into agent calls; `main.rs` wires them together.

pub mod agent;
pub mod api;
pub mod config;
pub mod http;
pub mod leaf;
pub mod leftovers;
pub mod logs;
pub mod model;
pub mod output;
pub mod procfs;
pub mod supervisor;

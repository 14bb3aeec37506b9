//! The console: pages that show and steer what runs next to the server — the processes
//! via-agent supervises and the leaf nodes it starts. Every action is a request to the agent;
//! every state comes from KV, so all tabs agree. One page per file.

pub mod processes;
pub mod scale;

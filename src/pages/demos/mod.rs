//! The demos: live, multi-tab pages built on the connection's hooks — users, chat, counter, config,
//! themes, and the partitioned workers (a page in a folder). One page per file.

pub mod chat;
pub mod config;
pub mod counter;
pub mod dashboard;
pub mod themes;
pub mod workers;

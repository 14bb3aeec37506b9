//! One page per file.

pub mod chat;
pub mod config;
pub mod counter;
pub mod dashboard;
pub mod themes;

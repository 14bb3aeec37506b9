//! The pages, grouped: `demos` (users, chat, counter, config, themes). One page per file.

pub mod demos;

//! The pages, grouped: `demos` (users, chat, counter, config, themes) and `console` (processes,
//! scale: what via-agent runs). One page per file.

pub mod console;
pub mod demos;

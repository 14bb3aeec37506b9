//! Widgets shared by the pages.

pub mod header;
pub mod theme;
pub mod toasts;

//! Widgets shared by the pages.

pub mod agent;
pub mod clock;
pub mod directory;
pub mod field;
pub mod header;
pub mod live_bucket;
pub mod mqtt_ws;
pub mod pacer;
pub mod theme;
pub mod toasts;
pub mod visibility;

//! The sans-IO protocol core: parser, encoder and connection state machine.
//!
//! Nothing in here does I/O, spawns tasks, or reads a clock: time comes in as an argument, bytes
//! come in through `handle_input` and go out through `poll_transmit`. The drivers in
//! [`crate::driver`] are thin loops around [`Connection`].

pub mod connection;
pub mod dedup;
pub mod encode;
pub(crate) mod id_map;
pub mod info;
pub(crate) mod json;
pub mod parser;

pub use connection::{
    split_userinfo, without_userinfo, Connection, Event, Status, SubscribeOptions, Transmit,
    MAX_FRAME,
};
#[cfg(feature = "nkeys")]
pub use connection::{SignRequest, Signed};
pub use encode::ClientOp;
pub use info::ServerInfo;
pub use parser::{Parser, ServerOp};

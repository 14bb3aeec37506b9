//! nats-ws in the browser, used as its users would: plain Rust loops over the public API.
//!
//! bench/index.html loads this (wasm-bindgen `--target web`) next to nats.js (bench/natsjs.mjs), and
//! bench/bench.mjs calls the same functions on both with the same arguments. Every function opens
//! its own connections (not timed), measures, and closes them.

#[cfg(feature = "bench")]
mod bench;
#[cfg(feature = "size-pubsub")]
mod size;

use wasm_bindgen::prelude::*;

/// The size of the wasm linear memory in bytes (`WebAssembly.Memory.buffer.byteLength`). It only
/// ever grows, so it is also the high-water mark of the Rust heap.
#[wasm_bindgen]
pub fn wasm_memory_bytes() -> f64 {
    wasm_bindgen::memory()
        .unchecked_into::<js_sys::WebAssembly::Memory>()
        .buffer()
        .unchecked_into::<js_sys::ArrayBuffer>()
        .byte_length() as f64
}

//! Helpers shared by the interop tests with nats-py (`interop.rs`, `interop_js.rs`): payloads and
//! headers in the shapes both sides print and compare.

use nats_ws::HeaderMap;
use serde_json::{json, Value};

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A payload of every byte value, CR LF, and bytes that look like protocol.
pub fn binary_payload(tag: u8) -> Vec<u8> {
    let mut p = vec![tag];
    p.extend(0..=255u8);
    p.extend_from_slice(b"\r\nPUB x 1\r\n\r\nHMSG\0\xff\xfe");
    p.extend_from_slice("ünïcødé ✓ 世界".as_bytes());
    p
}

pub fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

pub fn header_map(list: &[(&str, &str)]) -> HeaderMap {
    list.iter().copied().collect()
}

/// Our headers as an ordered list of pairs (names as received).
pub fn our_headers(headers: Option<&HeaderMap>) -> Option<Vec<(String, String)>> {
    headers.map(|h| {
        h.iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect()
    })
}

/// Headers as the peer's JSON spec takes them: `[[name, value], …]`, or null for none.
pub fn spec_headers(list: Option<&[(&str, &str)]>) -> Value {
    match list {
        None => Value::Null,
        Some(list) => Value::Array(list.iter().map(|(n, v)| json!([n, v])).collect()),
    }
}

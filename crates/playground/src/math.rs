//! The `math` NATS service: endpoint `math.sum` takes `{"x": …, "y": …}` and answers
//! `{"sum": …}`. Hosted natively (`via-math`, run by the agent) or in a tab, with this one handler.

use serde::{Deserialize, Serialize};

/// The service's name, version and description, as `$SRV.INFO` shows them.
pub const SERVICE: &str = "math";
pub const VERSION: &str = "1.0.0";
pub const DESCRIPTION: &str = "Adds two numbers";
/// The endpoint's subject (endpoint name `sum` in group `math`).
pub const GROUP: &str = "math";
pub const ENDPOINT: &str = "sum";
pub const SUBJECT: &str = "math.sum";
/// The endpoint's metadata: an example request under `example`, which the console's call form
/// opens with (a convention of this project's services, as process-control's).
pub const METADATA: (&str, &str) = ("example", r#"{"x": 2, "y": 3}"#);

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SumRequest {
    pub x: f64,
    pub y: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SumReply {
    pub sum: f64,
}

/// Why a request gets an error reply (`Nats-Service-Error` / `-Code` 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MathError {
    #[error("bad request: {0}; send {{\"x\": number, \"y\": number}}")]
    BadRequest(String),
    #[error("the sum of these numbers is not a finite number")]
    NotFinite,
}

impl MathError {
    /// The service error code.
    pub fn code(&self) -> u16 {
        400
    }
}

/// How much of a parse error the error reply repeats: serde quotes the offending value, which the
/// request chose, and the reply's header must stay far below the server's max_payload.
const MAX_REASON_CHARS: usize = 200;

/// Answers one request: the reply's JSON, or why not.
pub fn answer(payload: &[u8]) -> Result<Vec<u8>, MathError> {
    let bad = |e: serde_json::Error| {
        let text = e.to_string();
        MathError::BadRequest(match text.char_indices().nth(MAX_REASON_CHARS) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text,
        })
    };
    // An object only: serde would also read a struct from an array (`[1, 2]`). Read straight
    // into the request: other fields are skipped, not kept (a value of a megabyte of numbers
    // would take tens as a tree).
    if !payload.trim_ascii_start().starts_with(b"{") {
        return Err(MathError::BadRequest("not a JSON object".into()));
    }
    let request: SumRequest = serde_json::from_slice(payload).map_err(bad)?;
    let sum = request.x + request.y;
    if !sum.is_finite() {
        return Err(MathError::NotFinite);
    }
    serde_json::to_vec(&SumReply { sum }).map_err(|e| MathError::BadRequest(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds() {
        let reply = answer(br#"{"x": 2, "y": 40.5}"#).expect("sum");
        let reply: SumReply = serde_json::from_slice(&reply).expect("json");
        assert_eq!(reply.sum, 42.5);
    }

    #[test]
    fn refuses_what_is_not_a_pair_of_numbers() {
        for bad in [
            &b"not json"[..],
            br#"{"x": 1}"#,
            br#"{"x": "1", "y": 2}"#,
            b"",
            b"[1, 2]",
            b" [1, 2]",
        ] {
            assert!(
                matches!(answer(bad), Err(MathError::BadRequest(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            answer(br#"{"x": 1e308, "y": 1e308}"#),
            Err(MathError::NotFinite)
        );
        // A value of a megabyte is not repeated whole in the reply.
        let huge = format!(r#"{{"x": "{}", "y": 1}}"#, "é".repeat(1 << 20));
        let Err(MathError::BadRequest(why)) = answer(huge.as_bytes()) else {
            panic!("not a bad request");
        };
        assert!(why.starts_with("invalid type: string"), "{why}");
        assert_eq!(why.chars().count(), MAX_REASON_CHARS + 1);
        // Other fields, however large, are skipped.
        let extra = format!(r#"{{"x": 1, "y": 2, "z": [{}0]}}"#, "0,".repeat(1 << 18));
        let reply: SumReply =
            serde_json::from_slice(&answer(extra.as_bytes()).expect("sum")).expect("json");
        assert_eq!(reply.sum, 3.0);
    }

    /// The numbers travel as JSON text both ways, so the sum is exact only if every float reads
    /// back as written — serde_json's `float_roundtrip` (Cargo.toml); without it, e.g.
    /// 474508.20712337806 + 699468.1315061706 came back one bit off.
    #[test]
    fn sums_are_exact_through_json() {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut pairs = vec![(474508.20712337806, 699468.1315061706)];
        for _ in 0..20_000 {
            // Random bits: every exponent and mantissa (the non-finite ones skipped).
            let (x, y) = (f64::from_bits(next()), f64::from_bits(next()));
            if x.is_finite() && y.is_finite() && (x + y).is_finite() {
                pairs.push((x, y));
            }
            // And numbers of an everyday size, with all their digits.
            let scale = |bits: u64| (bits >> 11) as f64 / (1u64 << 53) as f64 * 2e6 - 1e6;
            pairs.push((scale(next()), scale(next())));
        }
        for (x, y) in pairs {
            let request = serde_json::to_vec(&SumRequest { x, y }).expect("json");
            let reply = answer(&request).expect("sum");
            let reply: SumReply = serde_json::from_slice(&reply).expect("json");
            assert_eq!(reply.sum.to_bits(), (x + y).to_bits(), "{x} + {y}");
        }
    }
}

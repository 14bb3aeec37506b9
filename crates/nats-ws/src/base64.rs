//! Base64 (RFC 4648): the standard alphabet with padding for what JetStream's JSON carries, the
//! URL-safe one without padding for an NKey signature. Written here rather than taken from the
//! `base64` crate (which the tests check these against): its engine was several KB of the
//! browser build for these three uses.

#[cfg(feature = "jetstream")]
const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
#[cfg(feature = "nkeys")]
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// URL-safe, without padding.
#[cfg(feature = "nkeys")]
pub(crate) fn encode_url(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(URL_SAFE[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// URL-safe, without padding; `None` for anything else.
#[cfg(all(feature = "nkeys", any(target_arch = "wasm32", test)))]
pub(crate) fn decode_url(text: &[u8]) -> Option<Vec<u8>> {
    decode(text, URL_SAFE)
}

/// The standard alphabet, padded to a multiple of 4 or not; `None` for anything else.
#[cfg(feature = "jetstream")]
pub(crate) fn decode_standard(text: &[u8]) -> Option<Vec<u8>> {
    let unpadded = match text {
        [rest @ .., b'=', b'='] | [rest @ .., b'='] if text.len() % 4 == 0 => rest,
        _ => text,
    };
    decode(unpadded, STANDARD)
}

#[cfg(any(
    feature = "jetstream",
    all(feature = "nkeys", any(target_arch = "wasm32", test))
))]
fn decode(text: &[u8], alphabet: &[u8; 64]) -> Option<Vec<u8>> {
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut bits, mut n) = (0u32, 0u32);
    for &c in text {
        bits = (bits << 6) | alphabet.iter().position(|&a| a == c)? as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    // The bits left over must be zero: one encoding per value, as the base64 crate insists.
    (bits == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(feature = "jetstream")]
    use base64::engine::general_purpose::STANDARD as B64;
    #[cfg(feature = "nkeys")]
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    fn samples() -> impl Iterator<Item = Vec<u8>> {
        (0..200usize).map(|len| (0..len).map(|i| (i * 37 + len * 11) as u8).collect())
    }

    #[test]
    fn what_the_base64_crate_writes_is_read_back() {
        for data in samples() {
            #[cfg(feature = "nkeys")]
            {
                assert_eq!(encode_url(&data), URL_SAFE_NO_PAD.encode(&data));
                let url = URL_SAFE_NO_PAD.encode(&data);
                assert_eq!(decode_url(url.as_bytes()), Some(data.clone()));
            }
            #[cfg(feature = "jetstream")]
            {
                let padded = B64.encode(&data);
                assert_eq!(decode_standard(padded.as_bytes()), Some(data.clone()));
                let bare = padded.trim_end_matches('=');
                assert_eq!(decode_standard(bare.as_bytes()), Some(data.clone()));
            }
        }
    }

    #[test]
    fn what_is_not_base64_is_refused() {
        #[cfg(feature = "jetstream")]
        for bad in [
            "A",
            "AB=C",
            "A===",
            "AB+/",
            "ABC=D===",
            "Zm9v YmFy",
            "Zg=",
            "Zh==",
            "==",
            "-_8=",
        ] {
            let bytes = bad.as_bytes();
            assert_eq!(decode_standard(bytes), B64.decode(bytes).ok(), "{bad:?}");
        }
        #[cfg(feature = "nkeys")]
        for bad in ["A", "Zg==", "Zh", "+/8", "-_8", "Zm9v YmFy"] {
            let bytes = bad.as_bytes();
            assert_eq!(
                decode_url(bytes),
                URL_SAFE_NO_PAD.decode(bytes).ok(),
                "{bad:?}"
            );
        }
    }
}

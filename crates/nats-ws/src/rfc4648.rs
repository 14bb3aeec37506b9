//! RFC 4648 encodings: base32 for NKey seeds and public keys, base64 (standard alphabet, padded)
//! for what JetStream's JSON carries, base64url without padding for an NKey signature. One bit
//! accumulator serves every alphabet. Written here rather than taken from the `base64` and
//! `data-encoding` crates (which the tests, and the NKey tests through the `nkeys` crate, check
//! these against): their engines were several KB of the browser build for these few uses.

#[cfg(feature = "nkeys")]
pub(crate) const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
#[cfg(feature = "jetstream")]
const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
#[cfg(feature = "nkeys")]
pub(crate) const BASE64_URL: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// `data` in `alphabet` (32 or 64 symbols), without padding; the last symbol's spare bits zero.
#[cfg(feature = "nkeys")]
pub(crate) fn encode(data: &[u8], alphabet: &[u8]) -> String {
    let width = alphabet.len().trailing_zeros();
    let mut out = String::with_capacity((data.len() * 8).div_ceil(width as usize));
    let (mut bits, mut n) = (0u32, 0u32);
    for &b in data {
        bits = (bits << 8) | u32::from(b);
        n += 8;
        while n >= width {
            n -= width;
            out.push(alphabet[((bits >> n) & ((1 << width) - 1)) as usize] as char);
        }
        bits &= (1 << n) - 1;
    }
    if n > 0 {
        out.push(alphabet[((bits << (width - n)) & ((1 << width) - 1)) as usize] as char);
    }
    out
}

/// `text` in `alphabet` (32 or 64 symbols), without padding; `None` for a symbol outside it, a
/// length no encoding has, or spare bits that are not zero (one encoding per value, as the
/// `base64` and `nkeys` crates insist).
pub(crate) fn decode(text: &[u8], alphabet: &[u8]) -> Option<Vec<u8>> {
    let width = alphabet.len().trailing_zeros();
    let mut out = Vec::with_capacity(text.len() * width as usize / 8);
    let (mut bits, mut n) = (0u32, 0u32);
    for &c in text {
        bits = (bits << width) | alphabet.iter().position(|&a| a == c)? as u32;
        n += width;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    // A whole symbol left over is a length no encoding has (base64's 4k + 1 characters).
    (n < width && bits == 0).then_some(out)
}

/// The standard base64 alphabet, padded to a multiple of 4 or not; `None` for anything else.
#[cfg(feature = "jetstream")]
pub(crate) fn decode_base64(text: &[u8]) -> Option<Vec<u8>> {
    let unpadded = match text {
        [rest @ .., b'=', b'='] | [rest @ .., b'='] if text.len() % 4 == 0 => rest,
        _ => text,
    };
    decode(unpadded, BASE64)
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
                assert_eq!(encode(&data, BASE64_URL), URL_SAFE_NO_PAD.encode(&data));
                let url = URL_SAFE_NO_PAD.encode(&data);
                assert_eq!(decode(url.as_bytes(), BASE64_URL), Some(data.clone()));
            }
            #[cfg(feature = "jetstream")]
            {
                let padded = B64.encode(&data);
                assert_eq!(decode_base64(padded.as_bytes()), Some(data.clone()));
                let bare = padded.trim_end_matches('=');
                assert_eq!(decode_base64(bare.as_bytes()), Some(data.clone()));
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
            assert_eq!(decode_base64(bytes), B64.decode(bytes).ok(), "{bad:?}");
        }
        #[cfg(feature = "nkeys")]
        for bad in ["A", "Zg==", "Zh", "+/8", "-_8", "Zm9v YmFy"] {
            let bytes = bad.as_bytes();
            assert_eq!(
                decode(bytes, BASE64_URL),
                URL_SAFE_NO_PAD.decode(bytes).ok(),
                "{bad:?}"
            );
        }
    }
}

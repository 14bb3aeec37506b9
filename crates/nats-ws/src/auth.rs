//! Credentials: what goes into `CONNECT`, made fresh for every handshake.
//!
//! NKey and JWT users prove who they are by signing the nonce of the server's `INFO` with their
//! seed (ed25519, the `nkeys` crate); the signature travels base64url-encoded without padding, as
//! nats.go and nats.js send it. A `.creds` file holds a user JWT and its seed between dashed
//! marker lines; the two are told apart by their content (a seed starts with `S`, a JWT has dots).

use std::fmt;
use std::sync::Arc;

use crate::error::CredentialsError;

/// How the client authenticates in `CONNECT`.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Auth {
    #[default]
    None,
    UserPassword {
        user: String,
        password: String,
    },
    Token(String),
    /// An NKey user: the server's nonce is signed with the seed (`SU…`), the public key derived
    /// from it goes with the signature. Made by [`Auth::nkey`], which checks the seed.
    #[cfg(feature = "nkeys")]
    NKey {
        seed: String,
    },
    /// A JWT user (decentralized authentication): the user JWT goes in `CONNECT`, the nonce is
    /// signed with the user's seed. Made by [`Auth::credentials`] from a `.creds` file's text.
    #[cfg(feature = "nkeys")]
    Jwt {
        jwt: String,
        seed: String,
    },
    /// Asked for the credentials at every (re)connect (see [`Authenticator`]).
    Callback(Authenticator),
}

impl Auth {
    /// An NKey user's seed (`SU…`), checked now so that a typo is reported here and not at the
    /// next connect.
    #[cfg(feature = "nkeys")]
    pub fn nkey(seed: &str) -> Result<Auth, CredentialsError> {
        nkey::user_seed(seed)?;
        Ok(Auth::NKey {
            seed: seed.trim().to_owned(),
        })
    }

    /// The user JWT and seed of a `.creds` file's text (as `nsc` writes it).
    #[cfg(feature = "nkeys")]
    pub fn credentials(creds: &str) -> Result<Auth, CredentialsError> {
        let (jwt, seed) = parse_creds(creds)?;
        Ok(Auth::Jwt { jwt, seed })
    }

    /// A `.creds` file, read now (so that a missing or broken file is reported here) and again
    /// at every (re)connect, so a rewritten file (a renewed JWT) is used without a restart.
    #[cfg(all(feature = "nkeys", not(target_arch = "wasm32")))]
    pub fn credentials_file(path: impl Into<std::path::PathBuf>) -> Result<Auth, CredentialsError> {
        let path = path.into();
        let read = move || -> Result<Auth, CredentialsError> {
            let text = std::fs::read_to_string(&path).map_err(|e| CredentialsError::Read {
                path: path.display().to_string(),
                detail: e.to_string(),
            })?;
            Auth::credentials(&text)
        };
        read()?;
        Ok(Auth::callback(move || read().map_err(|e| e.to_string())))
    }

    /// Credentials made anew for every (re)connect by `f`.
    pub fn callback(f: impl Fn() -> Result<Auth, String> + Send + Sync + 'static) -> Auth {
        Auth::Callback(Authenticator::new(f))
    }
}

// Credentials never reach logs: Debug shows the user name only.
impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::UserPassword { user, .. } => {
                write!(f, "UserPassword {{ user: {user:?}, password: <redacted> }}")
            }
            Auth::Token(_) => f.write_str("Token(<redacted>)"),
            #[cfg(feature = "nkeys")]
            Auth::NKey { .. } => f.write_str("NKey { seed: <redacted> }"),
            #[cfg(feature = "nkeys")]
            Auth::Jwt { .. } => f.write_str("Jwt { jwt: <redacted>, seed: <redacted> }"),
            Auth::Callback(_) => f.write_str("Callback(Authenticator)"),
        }
    }
}

/// Asked for the credentials at every (re)connect: a token that expires can be refreshed, a
/// `.creds` file rewritten. Returning an error fails that attempt with
/// [`CredentialsError::Authenticator`].
#[derive(Clone)]
pub struct Authenticator(Arc<dyn Fn() -> Result<Auth, String> + Send + Sync>);

impl Authenticator {
    pub fn new(f: impl Fn() -> Result<Auth, String> + Send + Sync + 'static) -> Self {
        Authenticator(Arc::new(f))
    }

    pub(crate) fn call(&self) -> Result<Auth, String> {
        (self.0)()
    }
}

impl PartialEq for Authenticator {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Authenticator {}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Authenticator")
    }
}

/// The credential fields of one `CONNECT`.
#[derive(Default)]
pub(crate) struct ConnectCredentials {
    pub user: Option<String>,
    pub pass: Option<String>,
    pub auth_token: Option<String>,
    pub jwt: Option<String>,
    pub nkey: Option<String>,
    pub sig: Option<String>,
}

// Credentials never reach logs.
impl fmt::Debug for ConnectCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConnectCredentials { .. }")
    }
}

/// Credentials resolved for one handshake: ready to send, or waiting for the server's nonce to be
/// signed (which the driver does: natively at once, in a browser by WebCrypto, asynchronously).
pub(crate) enum Resolved {
    Ready(ConnectCredentials),
    #[cfg(feature = "nkeys")]
    Sign {
        creds: ConnectCredentials,
        /// The user's seed as [`nkey::user_seed`] read it.
        seed: [u8; 32],
        /// An NKey user sends its public key with the signature; a JWT user's key is in the JWT.
        send_nkey: bool,
    },
}

/// Resolves `auth` (calling an authenticator); a method that signs the nonce says so.
pub(crate) fn connect_credentials(auth: &Auth) -> Result<Resolved, CredentialsError> {
    let called;
    let auth = match auth {
        Auth::Callback(authenticator) => {
            called = authenticator
                .call()
                .map_err(CredentialsError::Authenticator)?;
            if matches!(called, Auth::Callback(_)) {
                return Err(CredentialsError::Authenticator(
                    "an authenticator returned another authenticator".to_owned(),
                ));
            }
            &called
        }
        other => other,
    };
    let mut out = ConnectCredentials::default();
    match auth {
        Auth::None | Auth::Callback(_) => {}
        Auth::UserPassword { user, password } => {
            out.user = Some(user.clone());
            out.pass = Some(password.clone());
        }
        Auth::Token(token) => out.auth_token = Some(token.clone()),
        #[cfg(feature = "nkeys")]
        Auth::NKey { seed } => {
            // Read again: an authenticator's seed was not checked when it was made.
            return Ok(Resolved::Sign {
                creds: out,
                seed: nkey::user_seed(seed)?,
                send_nkey: true,
            });
        }
        #[cfg(feature = "nkeys")]
        Auth::Jwt { jwt, seed } => {
            out.jwt = Some(jwt.clone());
            return Ok(Resolved::Sign {
                creds: out,
                seed: nkey::user_seed(seed)?,
                send_nkey: false,
            });
        }
    }
    Ok(Resolved::Ready(out))
}

/// A nonce signed with a user's seed: what `CONNECT` carries for an NKey or JWT user.
#[cfg(feature = "nkeys")]
#[derive(Clone, PartialEq, Eq)]
pub struct Signed {
    /// The user's public key (`U…`), derived from the seed.
    pub nkey: String,
    /// The ed25519 signature of the nonce, base64url without padding (as nats.go sends it).
    pub sig: String,
}

#[cfg(feature = "nkeys")]
impl fmt::Debug for Signed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signed").field("nkey", &self.nkey).finish()
    }
}

/// NKey seeds and public keys: base32 (RFC 4648, no padding) of a prefix, the key and a
/// CRC-16/XMODEM of both (little-endian), as the nkeys libraries of nats.go and nats.js write them.
/// Read here rather than by the `nkeys` crate so that a browser build carries no ed25519 code: it
/// signs with the browser's own (WebCrypto). Native builds sign with the `nkeys` crate.
#[cfg(feature = "nkeys")]
pub(crate) mod nkey {
    use crate::error::CredentialsError;

    const SEED: u8 = 18 << 3;
    const USER: u8 = 20 << 3;
    use crate::rfc4648::{self, BASE32, BASE64_URL};

    /// The 32-byte ed25519 seed of a user seed (`SU…`); other seeds (operator, account, server)
    /// are refused: a client connects as a user.
    pub(crate) fn user_seed(seed: &str) -> Result<[u8; 32], CredentialsError> {
        let invalid = |why: &str| CredentialsError::InvalidSeed(why.to_owned());
        let seed = seed.trim();
        // 58 characters hold the 36 bytes exactly (no spare character, no stray trailing bits).
        if seed.len() != 58 {
            return Err(invalid("wrong length"));
        }
        let raw = rfc4648::decode(seed.as_bytes(), BASE32).ok_or_else(|| invalid("not base32"))?;
        let (body, crc) = raw.split_at(34);
        if crc16(body).to_le_bytes() != crc {
            return Err(invalid("checksum mismatch"));
        }
        if body[0] & 0b1111_1000 != SEED {
            return Err(invalid("not a seed"));
        }
        let kind = ((body[0] & 0b111) << 5) | (body[1] >> 3);
        if kind != USER {
            return Err(CredentialsError::NotAUserSeed);
        }
        let mut key = [0; 32];
        key.copy_from_slice(&body[2..]);
        Ok(key)
    }

    /// A user's public key (`U…`) from its 32 ed25519 bytes.
    #[cfg(any(target_arch = "wasm32", test))]
    pub(crate) fn user_public_key(key: &[u8; 32]) -> String {
        let mut raw = Vec::with_capacity(35);
        raw.push(USER);
        raw.extend_from_slice(key);
        let crc = crc16(&raw);
        raw.extend_from_slice(&crc.to_le_bytes());
        rfc4648::encode(&raw, BASE32)
    }

    fn crc16(data: &[u8]) -> u16 {
        let mut crc = 0u16;
        for &b in data {
            crc ^= u16::from(b) << 8;
            for _ in 0..8 {
                crc = if crc & 0x8000 != 0 {
                    (crc << 1) ^ 0x1021
                } else {
                    crc << 1
                };
            }
        }
        crc
    }

    /// Signs `nonce` with a user's 32-byte seed (as [`user_seed`] read it).
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn sign(seed: &[u8; 32], nonce: &str) -> Result<super::Signed, String> {
        let key = nkeys::KeyPair::new_from_raw(nkeys::KeyPairType::User, *seed)
            .map_err(|e| e.to_string())?;
        let sig = key.sign(nonce.as_bytes()).map_err(|e| e.to_string())?;
        Ok(super::Signed {
            nkey: key.public_key(),
            sig: rfc4648::encode(&sig, BASE64_URL),
        })
    }

    /// Signs `nonce` with a user's 32-byte seed (as [`user_seed`] read it) by the browser's WebCrypto
    /// Ed25519 (Chrome 137, Firefox 129, Safari 17 and later): the seed is imported as a PKCS #8
    /// key, the public key read back from its JWK.
    #[cfg(target_arch = "wasm32")]
    pub(crate) async fn sign(seed: [u8; 32], nonce: String) -> Result<super::Signed, String> {
        use wasm_bindgen::{JsCast, JsValue};
        use wasm_bindgen_futures::JsFuture;

        // PKCS #8 of an Ed25519 private key (RFC 8410): this DER header, then the 32-byte seed.
        const PKCS8: [u8; 16] = [
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        let no_ed25519 = |e: JsValue| {
            let why = e
                .dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
                .unwrap_or_else(|| "refused".to_owned());
            format!(
                "this browser's WebCrypto cannot sign with Ed25519 ({why}); NKey and JWT \
                 sign-in need Chrome 137, Firefox 129, Safari 17 or later"
            )
        };
        let mut der = Vec::with_capacity(48);
        der.extend_from_slice(&PKCS8);
        der.extend_from_slice(&seed);
        let subtle = js_sys::Reflect::get(&js_sys::global(), &"crypto".into())
            .ok()
            .and_then(|c| c.dyn_into::<web_sys::Crypto>().ok())
            .ok_or_else(|| "no WebCrypto here (crypto is missing)".to_owned())?
            .subtle();
        // Browsers give `crypto.subtle` to secure contexts only.
        if subtle.is_undefined() {
            return Err(
                "WebCrypto is there only for pages served over https:// or from \
                        localhost: NKey and JWT sign-in need one"
                    .to_owned(),
            );
        }
        let usages = js_sys::Array::of1(&"sign".into());
        let data = js_sys::Uint8Array::from(&der[..]);
        der.fill(0);
        let imported = subtle
            .import_key_with_str("pkcs8", &data, "Ed25519", true, &usages)
            .map_err(no_ed25519)?;
        data.fill(0, 0, data.length());
        let private: web_sys::CryptoKey = JsFuture::from(imported)
            .await
            .map_err(no_ed25519)?
            .unchecked_into();
        let jwk = JsFuture::from(subtle.export_key("jwk", &private).map_err(no_ed25519)?)
            .await
            .map_err(no_ed25519)?;
        let public = js_sys::Reflect::get(&jwk, &"x".into())
            .ok()
            .and_then(|x| x.as_string())
            .and_then(|x| rfc4648::decode(x.as_bytes(), BASE64_URL))
            .and_then(|x| <[u8; 32]>::try_from(x).ok())
            .ok_or_else(|| "WebCrypto gave no public key".to_owned())?;
        let signed = subtle
            .sign_with_str_and_u8_array("Ed25519", &private, nonce.as_bytes())
            .map_err(no_ed25519)?;
        let sig = JsFuture::from(signed).await.map_err(no_ed25519)?;
        let sig = js_sys::Uint8Array::new(&sig).to_vec();
        Ok(super::Signed {
            nkey: user_public_key(&public),
            sig: rfc4648::encode(&sig, BASE64_URL),
        })
    }
}

/// The user JWT and the seed of a `.creds` file's text (returned in that order).
#[cfg(feature = "nkeys")]
pub(crate) fn parse_creds(text: &str) -> Result<(String, String), CredentialsError> {
    let is_marker = |line: &str| {
        let line = line.trim();
        line.len() >= 6 && line.starts_with("---") && line.ends_with("---")
    };
    let is_value = |line: &str| {
        let line = line.trim();
        !line.is_empty()
            && line
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'='))
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut values = Vec::with_capacity(2);
    let mut i = 0;
    while i + 2 < lines.len() && values.len() < 2 {
        if is_marker(lines[i]) && is_value(lines[i + 1]) && is_marker(lines[i + 2]) {
            values.push(lines[i + 1].trim());
            i += 3;
        } else {
            i += 1;
        }
    }
    // Told apart by their content (as nats.go finds the seed by its prefix), so a file with
    // the seed only says the JWT is missing, and one with the JWT only says the seed is.
    let seed = values
        .iter()
        .find(|v| v.starts_with('S') && !v.contains('.'));
    let jwt = values.iter().find(|v| v.contains('.'));
    match (jwt, seed) {
        (Some(jwt), Some(seed)) => {
            nkey::user_seed(seed)?;
            Ok(((*jwt).to_owned(), (*seed).to_owned()))
        }
        (Some(_), None) => match values.iter().find(|v| !v.contains('.')) {
            // A second block that is not a seed: say what is wrong with it.
            Some(other) => Err(nkey::user_seed(other)
                .err()
                .unwrap_or(CredentialsError::NoSeed)),
            None => Err(CredentialsError::NoSeed),
        },
        (None, _) => Err(CredentialsError::NoJwt),
    }
}

#[cfg(all(test, feature = "nkeys"))]
mod tests {
    use super::*;
    use nkeys::KeyPair;

    fn user_seed() -> String {
        KeyPair::new_from_raw(nkeys::KeyPairType::User, [7u8; 32])
            .unwrap()
            .seed()
            .unwrap()
    }

    fn creds(jwt: &str, seed: &str) -> String {
        format!(
            "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
             ************************* IMPORTANT *************************\n\
             NKEY Seed printed below can be used to sign and prove identity.\n\n\
             -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
             *************************************************************\n"
        )
    }

    #[test]
    fn creds_give_the_jwt_then_the_seed() {
        let seed = user_seed();
        let text = creds("eyJhbGciOi.eyJqdGkiOi.c2ln-_", &seed);
        assert_eq!(
            parse_creds(&text).unwrap(),
            ("eyJhbGciOi.eyJqdGkiOi.c2ln-_".to_owned(), seed.clone())
        );
        // Windows line ends and indentation are tolerated.
        let crlf = text.replace('\n', "\r\n  ");
        assert_eq!(parse_creds(&crlf).unwrap().1, seed);
    }

    #[test]
    fn creds_without_a_seed_or_with_a_bad_one_are_named() {
        let seed = user_seed();
        let text = creds("eyJhbGciOi.x.y", &seed);
        let jwt_only = text.split("****").next().unwrap();
        assert_eq!(parse_creds(jwt_only), Err(CredentialsError::NoSeed));
        let seed_only = &text[text.find("-----BEGIN USER NKEY SEED").unwrap()..];
        assert_eq!(parse_creds(seed_only), Err(CredentialsError::NoJwt));
        assert_eq!(parse_creds("hello"), Err(CredentialsError::NoJwt));
        assert_eq!(parse_creds(""), Err(CredentialsError::NoJwt));
        let broken = creds("eyJ.x.y", &seed.replace('S', "T"));
        assert!(matches!(
            parse_creds(&broken),
            Err(CredentialsError::InvalidSeed(_))
        ));
        let account = KeyPair::new_from_raw(nkeys::KeyPairType::Account, [7u8; 32])
            .unwrap()
            .seed()
            .unwrap();
        assert_eq!(
            parse_creds(&creds("eyJ.x.y", &account)),
            Err(CredentialsError::NotAUserSeed)
        );
    }

    #[cfg(not(target_arch = "wasm32"))] // there: tests/browser.rs, with WebCrypto
    #[test]
    fn the_nonce_is_signed_with_the_seed_and_verifies_with_the_public_key() {
        let seed = user_seed();
        let Ok(Resolved::Sign {
            seed: to_sign,
            send_nkey: true,
            ..
        }) = connect_credentials(&Auth::NKey { seed: seed.clone() })
        else {
            panic!("an NKey user signs and sends its key");
        };
        let signed = nkey::sign(&to_sign, "n0nce-xyz").unwrap();
        assert!(signed.nkey.starts_with('U'), "{}", signed.nkey);
        let sig = decode_sig(&signed.sig);
        let verifier = KeyPair::from_public_key(&signed.nkey).unwrap();
        verifier.verify(b"n0nce-xyz", &sig).unwrap();
        assert!(verifier.verify(b"another nonce", &sig).is_err());
    }

    // What the browser build reads and writes itself, against the nkeys crate.
    #[test]
    fn seeds_and_public_keys_read_and_written_as_the_nkeys_crate_does() {
        for i in 0..=255u8 {
            let raw = [i, i.wrapping_mul(7), 255 - i, 3].repeat(8);
            let raw: [u8; 32] = raw.try_into().unwrap();
            let key = KeyPair::new_from_raw(nkeys::KeyPairType::User, raw).unwrap();
            assert_eq!(nkey::user_seed(&key.seed().unwrap()), Ok(raw));
            let (_, public) = nkeys::from_public_key(&key.public_key()).unwrap();
            assert_eq!(nkey::user_public_key(&public), key.public_key());
        }
        let seed = user_seed();
        // One changed character fails the checksum; a cut one the length.
        let mut typo = seed.clone().into_bytes();
        typo[20] = if typo[20] == b'A' { b'B' } else { b'A' };
        let typo = String::from_utf8(typo).unwrap();
        assert_eq!(
            nkey::user_seed(&typo),
            Err(CredentialsError::InvalidSeed("checksum mismatch".into()))
        );
        assert_eq!(
            nkey::user_seed(&seed[..57]),
            Err(CredentialsError::InvalidSeed("wrong length".into()))
        );
        // Accepted and refused as the nkeys crate does: every last character (two of its five
        // bits are spare and must be zero), and a character too many.
        let mut candidates: Vec<String> = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
            .chars()
            .map(|c| format!("{}{c}", &seed[..57]))
            .collect();
        candidates.push(format!("{seed}A"));
        candidates.push(format!("{seed}AAAA"));
        for candidate in candidates {
            assert_eq!(
                nkey::user_seed(&candidate).is_ok(),
                KeyPair::from_seed(&candidate).is_ok(),
                "{candidate}"
            );
        }
        assert_eq!(
            nkey::user_seed(&format!("{}-", &seed[..57])),
            Err(CredentialsError::InvalidSeed("not base32".into()))
        );
        // A public key is not a seed.
        let public = KeyPair::new_from_raw(nkeys::KeyPairType::User, [1; 32])
            .unwrap()
            .public_key();
        assert!(matches!(
            nkey::user_seed(&public),
            Err(CredentialsError::InvalidSeed(_))
        ));
        for kind in [
            nkeys::KeyPairType::Operator,
            nkeys::KeyPairType::Account,
            nkeys::KeyPairType::Server,
        ] {
            let other = KeyPair::new_from_raw(kind, [2; 32]).unwrap();
            assert_eq!(
                nkey::user_seed(&other.seed().unwrap()),
                Err(CredentialsError::NotAUserSeed)
            );
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn decode_sig(text: &str) -> Vec<u8> {
        use base64::Engine as _;
        assert!(!text.contains(['=', '+', '/']), "{text}");
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .unwrap()
    }

    #[test]
    fn an_authenticator_is_asked_each_time_and_its_failure_is_named() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let calls = Arc::new(AtomicU32::new(0));
        let counted = calls.clone();
        let auth = Auth::Callback(Authenticator::new(move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            if n < 2 {
                Ok(Auth::Token(format!("token-{n}")))
            } else {
                Err("token service unreachable".to_owned())
            }
        }));
        let tokens: Vec<_> = (0..2)
            .map(|_| {
                let Ok(Resolved::Ready(creds)) = connect_credentials(&auth) else {
                    panic!("a token needs no signature");
                };
                creds.auth_token.unwrap()
            })
            .collect();
        assert_eq!(tokens, ["token-0", "token-1"]);
        assert_eq!(
            connect_credentials(&auth).err(),
            Some(CredentialsError::Authenticator(
                "token service unreachable".to_owned()
            ))
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}

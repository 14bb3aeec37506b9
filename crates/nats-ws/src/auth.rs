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
        nkey::user_key(seed)?;
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

/// Resolves `auth` (calling an authenticator) and signs `nonce` where the method needs it.
pub(crate) fn connect_credentials(
    auth: &Auth,
    nonce: Option<&str>,
) -> Result<ConnectCredentials, CredentialsError> {
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
            let key = nkey::user_key(seed)?;
            out.nkey = Some(key.public_key());
            out.sig = Some(nkey::sign(&key, nonce)?);
        }
        #[cfg(feature = "nkeys")]
        Auth::Jwt { jwt, seed } => {
            let key = nkey::user_key(seed)?;
            out.jwt = Some(jwt.clone());
            out.sig = Some(nkey::sign(&key, nonce)?);
        }
    }
    #[cfg(not(feature = "nkeys"))]
    let _ = nonce;
    Ok(out)
}

#[cfg(feature = "nkeys")]
pub(crate) mod nkey {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use nkeys::{KeyPair, KeyPairType};

    use crate::error::CredentialsError;

    /// The key pair of a user seed (`SU…`); other seeds (operator, account, server) are refused:
    /// a client connects as a user.
    pub(crate) fn user_key(seed: &str) -> Result<KeyPair, CredentialsError> {
        let key = KeyPair::from_seed(seed.trim())
            .map_err(|e| CredentialsError::InvalidSeed(e.to_string()))?;
        if key.key_pair_type() != KeyPairType::User {
            return Err(CredentialsError::NotAUserSeed);
        }
        Ok(key)
    }

    pub(crate) fn sign(key: &KeyPair, nonce: Option<&str>) -> Result<String, CredentialsError> {
        let sig = key
            .sign(nonce.unwrap_or_default().as_bytes())
            .map_err(|e| CredentialsError::InvalidSeed(e.to_string()))?;
        Ok(URL_SAFE_NO_PAD.encode(sig))
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
            nkey::user_key(seed)?;
            Ok(((*jwt).to_owned(), (*seed).to_owned()))
        }
        (Some(_), None) => match values.iter().find(|v| !v.contains('.')) {
            // A second block that is not a seed: say what is wrong with it.
            Some(other) => Err(nkey::user_key(other)
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

    #[test]
    fn the_nonce_is_signed_with_the_seed_and_verifies_with_the_public_key() {
        let seed = user_seed();
        let creds =
            connect_credentials(&Auth::NKey { seed: seed.clone() }, Some("n0nce-xyz")).unwrap();
        let public = creds.nkey.unwrap();
        assert!(public.starts_with('U'), "{public}");
        let sig = decode_sig(&creds.sig.unwrap());
        let verifier = KeyPair::from_public_key(&public).unwrap();
        verifier.verify(b"n0nce-xyz", &sig).unwrap();
        assert!(verifier.verify(b"another nonce", &sig).is_err());
    }

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
                connect_credentials(&auth, None)
                    .unwrap()
                    .auth_token
                    .unwrap()
            })
            .collect();
        assert_eq!(tokens, ["token-0", "token-1"]);
        assert_eq!(
            connect_credentials(&auth, None).err(),
            Some(CredentialsError::Authenticator(
                "token service unreachable".to_owned()
            ))
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}

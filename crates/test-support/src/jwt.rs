//! Identities for the authentication tests, made in the test: NKey users, and an operator that
//! signs accounts that sign users (NATS decentralized authentication, JWT v2 as `nsc` writes
//! it), with the server configuration that trusts them (memory resolver, accounts preloaded).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use nkeys::{KeyPair, KeyPairType};
use serde_json::{json, Value};

/// A fresh random key pair of `kind` (on wasm32 too, where `KeyPair::new` has no randomness).
pub fn key(kind: KeyPairType) -> KeyPair {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).expect("random bytes");
    KeyPair::new_from_raw(kind, raw).expect("a key pair from 32 bytes")
}

pub fn seed(key: &KeyPair) -> String {
    key.seed().expect("a key made from a seed has one")
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    web_time::SystemTime::now()
        .duration_since(web_time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `claims` signed by `issuer` as a NATS JWT (`iss`, `iat` and `jti` filled in).
pub fn encode(issuer: &KeyPair, mut claims: Value) -> String {
    claims["iss"] = json!(issuer.public_key());
    if claims.get("iat").is_none() {
        claims["iat"] = json!(now());
    }
    let mut jti = [0u8; 16];
    getrandom::fill(&mut jti).expect("random bytes");
    claims["jti"] = json!(URL_SAFE_NO_PAD.encode(jti));
    let header = URL_SAFE_NO_PAD.encode(r#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signed = format!("{header}.{body}");
    let sig = issuer.sign(signed.as_bytes()).expect("signing");
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// An operator with one account `APP` and the system account `SYS`; users are made with
/// [`Operator::user`].
pub struct Operator {
    pub jwt: String,
    pub account: KeyPair,
    pub account_jwt: String,
    pub system: KeyPair,
    pub system_jwt: String,
}

impl Operator {
    pub fn new() -> Operator {
        let operator = key(KeyPairType::Operator);
        let account = key(KeyPairType::Account);
        let system = key(KeyPairType::Account);
        let jwt = encode(
            &operator,
            json!({
                "sub": operator.public_key(),
                "name": "test-operator",
                "nats": { "type": "operator", "version": 2,
                          "system_account": system.public_key() },
            }),
        );
        let account_jwt = account_claims(&operator, &account, "APP");
        let system_jwt = account_claims(&operator, &system, "SYS");
        Operator {
            jwt,
            account,
            account_jwt,
            system,
            system_jwt,
        }
    }

    /// A user of `APP` allowed everything; `expires_at` (seconds since the epoch) for an
    /// expiring JWT. Returns the user's key and JWT.
    pub fn user(&self, name: &str, expires_at: Option<i64>) -> (KeyPair, String) {
        let user = key(KeyPairType::User);
        let mut claims = json!({
            "sub": user.public_key(),
            "name": name,
            "nats": { "type": "user", "version": 2, "pub": {}, "sub": {},
                      "subs": -1, "data": -1, "payload": -1 },
        });
        if let Some(exp) = expires_at {
            claims["exp"] = json!(exp);
            claims["iat"] = json!(exp - 3600);
        }
        // Users are signed by their account's key.
        let jwt = encode(&self.account, claims);
        (user, jwt)
    }

    /// What nats-server.conf needs to trust this operator (replaces any `authorization` block).
    pub fn server_config(&self) -> String {
        format!(
            "operator: \"{}\"\nsystem_account: \"{}\"\nresolver: MEMORY\nresolver_preload: {{\n  {}: \"{}\"\n  {}: \"{}\"\n}}\n",
            self.jwt,
            self.system.public_key(),
            self.account.public_key(),
            self.account_jwt,
            self.system.public_key(),
            self.system_jwt,
        )
    }
}

impl Default for Operator {
    fn default() -> Self {
        Operator::new()
    }
}

fn account_claims(operator: &KeyPair, account: &KeyPair, name: &str) -> String {
    encode(
        operator,
        json!({
            "sub": account.public_key(),
            "name": name,
            "nats": { "type": "account", "version": 2,
                      "limits": { "subs": -1, "data": -1, "payload": -1, "imports": -1,
                                  "exports": -1, "wildcards": true, "conn": -1, "leaf": -1 },
                      "default_permissions": { "pub": {}, "sub": {} } },
        }),
    )
}

/// A `.creds` file's text, as `nsc` writes it.
pub fn creds(jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n"
    )
}

/// nats-server.conf lines for NKey users (public keys), e.g. next to user/password ones.
pub fn nkey_users_config(users: &[&KeyPair]) -> String {
    let entries: Vec<String> = users
        .iter()
        .map(|u| format!("    {{ nkey: \"{}\" }}", u.public_key()))
        .collect();
    format!(
        "authorization {{\n  users = [\n{}\n  ]\n}}\n",
        entries.join("\n")
    )
}

//! The JSON bodies of `INFO` (server → client) and `CONNECT` (client → server).

use serde::{Deserialize, Serialize};

/// What the server says about itself in `INFO`. Unknown fields are ignored, missing ones default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ServerInfo {
    pub server_id: String,
    pub server_name: String,
    pub version: String,
    pub proto: i8,
    pub go: String,
    pub host: String,
    pub port: u16,
    pub headers: bool,
    pub max_payload: usize,
    pub auth_required: bool,
    pub tls_required: bool,
    pub jetstream: bool,
    pub client_id: u64,
    pub client_ip: String,
    pub nonce: Option<String>,
    pub cluster: Option<String>,
    pub domain: Option<String>,
    /// Other servers of the cluster that this client may connect to.
    pub connect_urls: Vec<String>,
    /// Lame-duck mode: the server is about to shut down and will close this connection soon.
    #[serde(rename = "ldm")]
    pub lame_duck_mode: bool,
}

/// The body of `CONNECT`. Credentials are skipped when absent.
#[derive(Serialize)]
pub(crate) struct ConnectInfo<'a> {
    pub verbose: bool,
    pub pedantic: bool,
    pub tls_required: bool,
    pub lang: &'static str,
    pub version: &'static str,
    pub protocol: u8,
    pub headers: bool,
    pub no_responders: bool,
    pub echo: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nkey: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sig: Option<&'a str>,
}

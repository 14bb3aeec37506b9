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

impl ServerInfo {
    /// How many servers this server's cluster has, as it advertises them to clients
    /// (`connect_urls`, itself included); 1 outside a cluster (or when the cluster does not
    /// advertise). What is up when it says so: a node that is down is not counted.
    pub fn cluster_size(&self) -> usize {
        if self.cluster.is_none() {
            return 1;
        }
        let distinct: std::collections::HashSet<&str> =
            self.connect_urls.iter().map(String::as_str).collect();
        distinct.len().max(1)
    }
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

#[cfg(test)]
mod tests {
    use super::ServerInfo;

    fn info(json: &str) -> ServerInfo {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn cluster_size_counts_the_advertised_servers_of_a_cluster_only() {
        // A single server, and one whose own client url is all it advertises.
        assert_eq!(info(r#"{"server_id":"a"}"#).cluster_size(), 1);
        assert_eq!(
            info(r#"{"connect_urls":["127.0.0.1:4222","127.0.0.1:4223"]}"#).cluster_size(),
            1,
            "connect_urls without a cluster name (a gateway or a leaf's view) is no cluster"
        );
        // What 2.9.10 sends a WebSocket client of a 3-node cluster: the WebSocket urls, itself
        // included.
        let three = info(
            r#"{"cluster":"via","connect_urls":["127.0.0.1:8080","127.0.0.1:8081","127.0.0.1:8082"]}"#,
        );
        assert_eq!(three.cluster_size(), 3);
        // Repeated urls count once; a cluster that advertises nothing (no_advertise) counts 1.
        let repeated =
            info(r#"{"cluster":"via","connect_urls":["h:1","h:1","h:2"]}"#).cluster_size();
        assert_eq!(repeated, 2);
        assert_eq!(info(r#"{"cluster":"via"}"#).cluster_size(), 1);
    }
}

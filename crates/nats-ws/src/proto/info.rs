//! The JSON bodies of `INFO` (server → client) and `CONNECT` (client → server).

use super::json::{JsonError, Reader, Writer};

/// What the server says about itself in `INFO`. Unknown fields are ignored, missing ones default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
    /// Lame-duck mode: the server is about to shut down and will close this connection soon
    /// (`ldm`).
    pub lame_duck_mode: bool,
}

impl ServerInfo {
    /// Reads the JSON of `INFO`. A known field of the wrong type is an error; `null` reads as
    /// the field's default.
    pub fn parse(json: &[u8]) -> Result<ServerInfo, JsonError> {
        let mut info = ServerInfo::default();
        Reader::new(json).object(|key, r| {
            if r.null() {
                return Ok(());
            }
            match key {
                "server_id" => info.server_id = r.string()?,
                "server_name" => info.server_name = r.string()?,
                "version" => info.version = r.string()?,
                "go" => info.go = r.string()?,
                "host" => info.host = r.string()?,
                "client_ip" => info.client_ip = r.string()?,
                "nonce" => info.nonce = Some(r.string()?),
                "cluster" => info.cluster = Some(r.string()?),
                "domain" => info.domain = Some(r.string()?),
                "connect_urls" => info.connect_urls = r.strings()?,
                "proto" => info.proto = r.signed(i8::MIN.into(), i8::MAX.into())? as i8,
                "port" => info.port = r.unsigned(u16::MAX.into())? as u16,
                "max_payload" => {
                    info.max_payload = usize::try_from(r.unsigned(u64::MAX)?)
                        .map_err(|_| "integer out of range")?
                }
                "client_id" => info.client_id = r.unsigned(u64::MAX)?,
                "headers" => info.headers = r.bool()?,
                "auth_required" => info.auth_required = r.bool()?,
                "tls_required" => info.tls_required = r.bool()?,
                "jetstream" => info.jetstream = r.bool()?,
                "ldm" => info.lame_duck_mode = r.bool()?,
                _ => r.skip()?,
            }
            Ok(())
        })?;
        Ok(info)
    }

    /// How many servers this server's cluster has, as it advertises them to clients
    /// (`connect_urls`, itself included); 1 outside a cluster (or when the cluster does not
    /// advertise). What is up when it says so: a node that is down is not counted. At most 64,
    /// from the list's first 256 entries: a cluster has a few servers, and a longer list (an
    /// INFO may be a megabyte) is not scanned.
    pub fn cluster_size(&self) -> usize {
        if self.cluster.is_none() {
            return 1;
        }
        // Distinct urls by a scan of those counted so far: no sort, no hash set in the build.
        let mut distinct: Vec<&str> = Vec::new();
        for url in self.connect_urls.iter().take(256) {
            if distinct.len() == 64 {
                break;
            }
            if !distinct.contains(&url.as_str()) {
                distinct.push(url);
            }
        }
        distinct.len().max(1)
    }
}

/// The body of `CONNECT`. Credentials are left out when absent.
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
    pub name: Option<&'a str>,
    pub user: Option<&'a str>,
    pub pass: Option<&'a str>,
    pub auth_token: Option<&'a str>,
    pub jwt: Option<&'a str>,
    pub nkey: Option<&'a str>,
    pub sig: Option<&'a str>,
}

impl ConnectInfo<'_> {
    pub(crate) fn to_json(&self) -> String {
        let mut w = Writer::new();
        w.bool("verbose", self.verbose);
        w.bool("pedantic", self.pedantic);
        w.bool("tls_required", self.tls_required);
        w.string("lang", Some(self.lang));
        w.string("version", Some(self.version));
        w.unsigned("protocol", self.protocol.into());
        w.bool("headers", self.headers);
        w.bool("no_responders", self.no_responders);
        w.bool("echo", self.echo);
        w.string("name", self.name);
        w.string("user", self.user);
        w.string("pass", self.pass);
        w.string("auth_token", self.auth_token);
        w.string("jwt", self.jwt);
        w.string("nkey", self.nkey);
        w.string("sig", self.sig);
        w.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::ServerInfo;

    fn info(json: &str) -> ServerInfo {
        ServerInfo::parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn what_both_servers_send_is_read() {
        // INFO of nats-server 2.15 to a WebSocket client of a 2-node cluster (trimmed).
        let json = br#"{"server_id":"NDXK","server_name":"via-n1","version":"2.15.1",
            "proto":1,"git_commit":"abc","go":"go1.25","host":"127.0.0.1","port":8080,
            "headers":true,"auth_required":true,"max_payload":1048576,"jetstream":true,
            "client_id":18446744073709551615,"client_ip":"127.0.0.1","nonce":"n0nc\u00e9",
            "xkey":"XA","cluster":"via","connect_urls":["127.0.0.1:8080","127.0.0.1:8081"],
            "ldm":false,"tls_available":{"x":[1,2]},"domain":null,"ws_extra":1.5e3}"#;
        let info = ServerInfo::parse(json).unwrap();
        assert_eq!(
            info,
            ServerInfo {
                server_id: "NDXK".into(),
                server_name: "via-n1".into(),
                version: "2.15.1".into(),
                proto: 1,
                go: "go1.25".into(),
                host: "127.0.0.1".into(),
                port: 8080,
                headers: true,
                max_payload: 1048576,
                auth_required: true,
                tls_required: false,
                jetstream: true,
                client_id: u64::MAX,
                client_ip: "127.0.0.1".into(),
                nonce: Some("n0ncé".into()),
                cluster: Some("via".into()),
                domain: None,
                connect_urls: vec!["127.0.0.1:8080".into(), "127.0.0.1:8081".into()],
                lame_duck_mode: false,
            }
        );
        assert_eq!(ServerInfo::parse(b"{}").unwrap(), ServerInfo::default());
        assert!(
            ServerInfo::parse(br#"{"ldm":true}"#)
                .unwrap()
                .lame_duck_mode
        );
        for bad in [
            &br#"{"port":"4222"}"#[..],
            br#"{"port":70000}"#,
            br#"{"headers":1}"#,
            br#"{"connect_urls":"a"}"#,
            br#"{"max_payload":-1}"#,
            b"not json",
        ] {
            assert!(
                ServerInfo::parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
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
        // A list longer than any cluster stops counting at 64.
        let urls: Vec<String> = (0..1000).map(|i| format!("\"h:{i}\"")).collect();
        let huge = format!(r#"{{"cluster":"via","connect_urls":[{}]}}"#, urls.join(","));
        assert_eq!(info(&huge).cluster_size(), 64);
    }
}

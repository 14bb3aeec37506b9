//! Leaf nodes: names, free ports, the `leaf.conf` the agent writes, and reading the hub's
//! `/leafz`. Nothing here starts a process.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;

/// `[a-z][a-z0-9-]{0,31}`: safe in a path, a config file and a subject token as it is. The
/// leading letter keeps nats-server's config parser from reading a name such as `1`, `-1` or `10k`
/// as a number (and [`render_conf`] quotes it, for `true`, `on` and the like).
pub fn valid_leaf_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.as_bytes()[0].is_ascii_lowercase()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// What a request is told when its leaf name is not [`valid_leaf_name`].
pub fn invalid_leaf_name(name: &str) -> String {
    format!("invalid leaf name {name:?}: use a lowercase letter, then up to 31 of a-z, 0-9 and '-'")
}

/// `leaf-1`, `leaf-2`, … the first that `taken` says is free.
pub fn first_free_name(taken: impl Fn(&str) -> bool) -> String {
    (1..)
        .map(|n| format!("leaf-{n}"))
        .find(|n| !taken(n))
        .expect("some leaf number is free")
}

/// What a leaf's clients (anonymous, on the leaf's own ports) may not send to the hub: the agent's
/// requests, the hub's JetStream and KV writes, acks, the system account.
pub const DENY_EXPORTS: [&str; 7] = [
    "via.proc.>",
    "via.leaf.>",
    "proc.logs.>",
    "$JS.API.>",
    "$JS.ACK.>",
    "$KV.>",
    "$SYS.>",
];

/// What a leaf's clients may not take from the hub: the agent's requests. Subscribed on the leaf,
/// in the agent's queue group, they would be answered there when the agent is away; the hub
/// refuses that to its own anonymous `browser` (nats-accounts.conf).
pub const DENY_IMPORTS: [&str; 2] = ["via.proc.>", "via.leaf.>"];

/// The user leaf nodes sign in to the hub as (`NATS_LEAF_PASSWORD` in data/credentials.env).
pub const LEAF_USER: &str = "leaf";

/// A port on 127.0.0.1 that was free a moment ago (bound, read, closed): the leaf takes it when it
/// starts, and a leaf that cannot is restarted on failure, so a lost race is reported, not hidden.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeafPorts {
    pub client: u16,
    pub http: u16,
    pub ws: u16,
}

impl LeafPorts {
    pub fn pick() -> std::io::Result<LeafPorts> {
        loop {
            let ports = LeafPorts {
                client: free_port()?,
                http: free_port()?,
                ws: free_port()?,
            };
            if ports.client != ports.http && ports.http != ports.ws && ports.client != ports.ws {
                return Ok(ports);
            }
        }
    }
}

/// The leafnode ports on 127.0.0.1 a new leaf lists, in the order it tries them. The hub's
/// (`hub`) alone while something listens on it: once linked, the leaf learns the other nodes of
/// its cluster from the hub (INFO's `leafnode_urls`), and a port of the list that is not a node
/// would cost it a failed try at each reconnect. Otherwise (node 1 of a cluster down) those of
/// the cluster's other nodes (`cluster`) that listen now, then the hub's (it may come back).
pub fn remote_ports(hub: u16, cluster: &[u16], listening: &HashSet<u16>) -> Vec<u16> {
    if listening.contains(&hub) {
        return vec![hub];
    }
    let mut ports: Vec<u16> = Vec::new();
    for &port in cluster {
        if port != hub && listening.contains(&port) && !ports.contains(&port) {
            ports.push(port);
        }
    }
    ports.push(hub);
    ports
}

/// Which local ports something listens on now at 127.0.0.1 or every address (IPv4 or IPv6),
/// from `/proc/net/tcp` and `/proc/net/tcp6`. Read, not tried: a connection to a server's
/// leafnode port would be a line in its log. Reads /proc: call it off the runtime's thread.
pub fn listening_ports() -> HashSet<u16> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|table| parse_listening(&table))
        .collect()
}

/// The local ports of a `/proc/net/tcp{,6}` table's sockets in state LISTEN (`0A`) on a
/// loopback or wildcard address (as the kernel writes them: 127.0.0.1, 0.0.0.0, ::1, ::,
/// ::ffff:127.0.0.1).
fn parse_listening(table: &str) -> HashSet<u16> {
    const REACHABLE: [&str; 5] = [
        "0100007F",
        "00000000",
        "00000000000000000000000001000000",
        "00000000000000000000000000000000",
        "0000000000000000FFFF00000100007F",
    ];
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (local, state) = (f.get(1)?, f.get(3)?);
            let (address, port) = local.rsplit_once(':')?;
            (*state == "0A" && REACHABLE.contains(&address))
                .then(|| u16::from_str_radix(port, 16).ok())?
        })
        .collect()
}

/// The leaf's nats-server config: every listener on 127.0.0.1, JetStream in its own domain (named
/// after the leaf, so its API never answers for the hub's), one remote: the hub's leafnode ports
/// (`hub_leafnode_ports`, [`remote_ports`]), tried in their order.
/// `name` must be valid ([`valid_leaf_name`]) and `store_dir` a path the agent made. Names are
/// quoted: unquoted, nats-server reads `true`, `on` or `yes` as booleans.
pub fn render_conf(
    name: &str,
    ports: LeafPorts,
    store_dir: &Path,
    hub_leafnode_ports: &[u16],
    hub_password: Option<&str>,
) -> String {
    debug_assert!(valid_leaf_name(name));
    let store = serde_json::to_string(&store_dir.to_string_lossy()).expect("a string serialises");
    // The hub's leaf user (nats-server.conf's leafnodes block binds it to account APP). The
    // password is one of nats.sh's generated ones (letters and digits), so it needs no escaping
    // in the url; one that would is left out, and the hub refuses the leaf with a logged reason.
    let userinfo = hub_password
        .filter(|p| p.bytes().all(|b| b.is_ascii_alphanumeric()))
        .map(|p| format!("{LEAF_USER}:{p}@"))
        .unwrap_or_default();
    format!(
        "# Written by via-agent for leaf node {name}; removed with the leaf.\n\
         server_name: \"{name}\"\n\
         host: 127.0.0.1\n\
         port: {client}\n\
         http: 127.0.0.1:{http}\n\
         websocket {{\n  host: 127.0.0.1\n  port: {ws}\n  no_tls: true\n}}\n\
         jetstream {{\n  store_dir: {store}\n  domain: \"{name}\"\n}}\n\
         leafnodes {{\n  remotes [\n    {{\n      urls: [{urls}]\n      dont_randomize: true\n      \
         # The leaf's own clients sign in as nobody: what they may not send across, and take.\n      \
         deny_exports: [{exports}]\n      deny_imports: [{imports}]\n    }}\n  ]\n}}\n",
        urls = hub_leafnode_ports
            .iter()
            .map(|port| format!("\"nats-leaf://{userinfo}127.0.0.1:{port}\""))
            .collect::<Vec<_>>()
            .join(", "),
        exports = quoted_list(&DENY_EXPORTS),
        imports = quoted_list(&DENY_IMPORTS),
        client = ports.client,
        http = ports.http,
        ws = ports.ws,
    )
}

/// `"a", "b"`: subjects for a list in a nats-server config.
fn quoted_list(subjects: &[&str]) -> String {
    subjects
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One connection in the hub's `/leafz`. `name` exists from nats-server 2.10 on; 2.9 lists only
/// the leaf's address, so the agent matches those by the local port of the leaf's socket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct LeafzEntry {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub port: u16,
    #[serde(default)]
    pub rtt: Option<String>,
    #[serde(default)]
    pub in_msgs: u64,
    #[serde(default)]
    pub out_msgs: u64,
    #[serde(default)]
    pub in_bytes: u64,
    #[serde(default)]
    pub out_bytes: u64,
}

impl LeafzEntry {
    /// A leaf's own entry for its link, counted as the hub counts it (what the leaf received,
    /// the hub sent).
    pub fn seen_from_the_hub(self) -> LeafzEntry {
        LeafzEntry {
            in_msgs: self.out_msgs,
            out_msgs: self.in_msgs,
            in_bytes: self.out_bytes,
            out_bytes: self.in_bytes,
            ..self
        }
    }
}

#[derive(Debug, Deserialize)]
struct Leafz {
    #[serde(default)]
    leafs: Vec<LeafzEntry>,
}

pub fn parse_leafz(body: &str) -> Result<Vec<LeafzEntry>, String> {
    serde_json::from_str::<Leafz>(body)
        .map(|l| l.leafs)
        .map_err(|e| format!("unreadable /leafz: {e}"))
}

/// Reads of the hub's /leafz that may fail in a row before its leaves are taken for disconnected:
/// one slow answer (2 s, a busy machine) should not make every leaf blink out of the registry.
pub const LEAFZ_FAILURES_TOLERATED: u64 = 2;

/// What the hub says of the leaf whose nats-server is `pid`: `Some(Some(entry))` listed,
/// `Some(None)` not listed (or its nats-server is not running), `None` not known this time (the
/// read failed, fewer than [`LEAFZ_FAILURES_TOLERATED`] times in a row: keep what was known).
/// `local_ports` (of `pid`'s sockets to the hub) is read only when needed (it reads /proc).
pub fn hub_view(
    entries: &Result<Vec<LeafzEntry>, String>,
    failures_in_a_row: u64,
    pid: Option<u32>,
    name: &str,
    local_ports: impl FnOnce(u32) -> HashSet<u16>,
) -> Option<Option<LeafzEntry>> {
    let Some(pid) = pid else {
        return Some(None);
    };
    match entries {
        Ok(entries) => Some(find_leaf(entries, name, &local_ports(pid)).cloned()),
        Err(_) if failures_in_a_row <= LEAFZ_FAILURES_TOLERATED => None,
        Err(_) => Some(None),
    }
}

/// The entry of the leaf named `name` whose process is `pid`: by name where the server says it,
/// else by the local ports of the sockets `pid` has open to the hub.
pub fn find_leaf<'a>(
    entries: &'a [LeafzEntry],
    name: &str,
    local_ports: &HashSet<u16>,
) -> Option<&'a LeafzEntry> {
    entries
        .iter()
        .find(|e| e.name.as_deref() == Some(name))
        .or_else(|| {
            entries
                .iter()
                .find(|e| e.name.is_none() && local_ports.contains(&e.port))
        })
}

/// Local ports of the TCP connections process `pid` has to `remote_port` on 127.0.0.1 (socket
/// inodes from `/proc/<pid>/fd`, matched against `/proc/<pid>/net/tcp`).
pub fn local_ports_to(pid: u32, remote_port: u16) -> HashSet<u16> {
    let inodes: HashSet<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let t = target.to_str()?;
            t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect();
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
    parse_tcp_table(&table, remote_port, &inodes)
}

fn parse_tcp_table(table: &str, remote_port: u16, inodes: &HashSet<u64>) -> HashSet<u16> {
    let port_of = |addr: &str| u16::from_str_radix(addr.rsplit(':').next()?, 16).ok();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (local, remote, inode) = (f.get(1)?, f.get(2)?, f.get(9)?.parse::<u64>().ok()?);
            (port_of(remote)? == remote_port && inodes.contains(&inode)).then(|| port_of(local))?
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_names() {
        for ok in ["leaf-1", "a", "x-y-z", "on", "true", &"a".repeat(32)] {
            assert!(valid_leaf_name(ok), "{ok}");
        }
        for bad in [
            "",
            "0",
            "1",
            "-1",
            "10k",
            "Leaf",
            "leaf_1",
            "leaf.1",
            "../x",
            "a b",
            "leaf-é",
            "x\n",
            &"a".repeat(33),
        ] {
            assert!(!valid_leaf_name(bad), "{bad:?}");
        }
        assert_eq!(
            first_free_name(|n| n == "leaf-1" || n == "leaf-3"),
            "leaf-2"
        );
        assert_eq!(first_free_name(|_| false), "leaf-1");
    }

    #[test]
    fn conf_has_every_listener_on_loopback() {
        let ports = LeafPorts {
            client: 1,
            http: 2,
            ws: 3,
        };
        let conf = render_conf(
            "leaf-2",
            ports,
            Path::new("/d/leaves/leaf-2/store"),
            &[7422],
            None,
        );
        assert!(conf.contains("server_name: \"leaf-2\"\n"));
        assert!(conf.contains("host: 127.0.0.1\nport: 1\n"));
        assert!(conf.contains("http: 127.0.0.1:2\n"));
        assert!(conf.contains("websocket {\n  host: 127.0.0.1\n  port: 3\n  no_tls: true\n}"));
        assert!(conf.contains("store_dir: \"/d/leaves/leaf-2/store\"\n  domain: \"leaf-2\"\n"));
        assert!(
            conf.contains("urls: [\"nats-leaf://127.0.0.1:7422\"]\n      dont_randomize: true\n")
        );
        assert!(conf.contains(r#"deny_exports: ["via.proc.>", "via.leaf.>", "proc.logs.>", "$JS.API.>", "$JS.ACK.>", "$KV.>", "$SYS.>"]"#), "{conf}");
        assert!(
            conf.contains(r#"deny_imports: ["via.proc.>", "via.leaf.>"]"#),
            "{conf}"
        );
        let path = Path::new("/s");
        let signed = render_conf("leaf-2", ports, path, &[7423, 7422], Some("Pw1"));
        assert!(signed.contains(
            "urls: [\"nats-leaf://leaf:Pw1@127.0.0.1:7423\", \"nats-leaf://leaf:Pw1@127.0.0.1:7422\"]"
        ));
        let odd = render_conf("leaf-2", ports, path, &[7422], Some("p@ss\""));
        assert!(
            odd.contains("urls: [\"nats-leaf://127.0.0.1:7422\"]"),
            "{odd}"
        );
        let ports = LeafPorts::pick().unwrap();
        assert!(ports.client != ports.http && ports.http != ports.ws);
    }

    #[test]
    fn leafz_of_both_server_generations() {
        let v2_9 = r#"{"server_id":"N","leafnodes":1,"leafs":[{"account":"$G","ip":"127.0.0.1",
            "port":38864,"rtt":"497µs","in_msgs":1,"out_msgs":2,"in_bytes":3,"out_bytes":4,
            "subscriptions":13}]}"#;
        let v2_15 = r#"{"leafs":[{"id":5,"name":"leaf-1","is_spoke":false,"port":1,
            "rtt":"1.2ms","in_msgs":0,"out_msgs":0,"in_bytes":0,"out_bytes":0}]}"#;
        let old = parse_leafz(v2_9).unwrap();
        let new = parse_leafz(v2_15).unwrap();
        let ports: HashSet<u16> = [38864].into();
        assert_eq!(find_leaf(&old, "leaf-1", &ports).unwrap().out_bytes, 4);
        assert!(find_leaf(&old, "leaf-1", &HashSet::new()).is_none());
        assert_eq!(
            find_leaf(&new, "leaf-1", &HashSet::new())
                .unwrap()
                .rtt
                .as_deref(),
            Some("1.2ms")
        );
        assert!(find_leaf(&new, "leaf-2", &ports).is_none());
        assert!(parse_leafz(r#"{"leafnodes":0}"#).unwrap().is_empty());
        assert!(parse_leafz("<html>").is_err());
    }

    #[test]
    fn a_failed_leafz_read_keeps_what_was_known_for_two_reads() {
        let listed: Result<Vec<LeafzEntry>, String> =
            parse_leafz(r#"{"leafs":[{"name":"leaf-1","port":1,"rtt":"1ms"}]}"#);
        let failed: Result<Vec<LeafzEntry>, String> = Err("timed out".into());
        let no_ports = |_| HashSet::new();
        let running = Some(7);
        let seen = hub_view(&listed, 0, running, "leaf-1", no_ports);
        assert_eq!(seen.flatten().and_then(|e| e.rtt).as_deref(), Some("1ms"));
        assert_eq!(
            hub_view(&listed, 0, running, "leaf-2", no_ports),
            Some(None)
        );
        // Unknown for two failed reads in a row, then not listed.
        assert_eq!(hub_view(&failed, 1, running, "leaf-1", no_ports), None);
        assert_eq!(hub_view(&failed, 2, running, "leaf-1", no_ports), None);
        assert_eq!(
            hub_view(&failed, 3, running, "leaf-1", no_ports),
            Some(None)
        );
        // A leaf whose nats-server is not running is not connected, whatever the hub said.
        assert_eq!(hub_view(&failed, 1, None, "leaf-1", no_ports), Some(None));
        assert_eq!(hub_view(&listed, 0, None, "leaf-1", no_ports), Some(None));
    }

    #[test]
    fn a_leaf_lists_the_hub_alone_unless_it_is_down() {
        let listening = |ports: &[u16]| ports.iter().copied().collect::<HashSet<u16>>();
        // The hub listening: it alone, whatever else listens (the leaf learns the cluster's
        // other nodes from it).
        assert_eq!(
            remote_ports(7422, &[7423, 7424], &listening(&[7422])),
            [7422]
        );
        assert_eq!(
            remote_ports(7422, &[7423, 7424], &listening(&[7424, 7423, 7422])),
            [7422]
        );
        assert_eq!(remote_ports(7422, &[], &listening(&[])), [7422]);
        // Down: the nodes that listen, in their order, then the hub's.
        assert_eq!(remote_ports(7422, &[7423, 7424], &listening(&[])), [7422]);
        assert_eq!(
            remote_ports(7422, &[7423, 7424], &listening(&[7424, 7423])),
            [7423, 7424, 7422]
        );
        assert_eq!(
            remote_ports(7422, &[7424, 7423], &listening(&[7423])),
            [7423, 7422]
        );
        // Named twice, or the hub among them: listed once.
        assert_eq!(
            remote_ports(7422, &[7422, 7423, 7423], &listening(&[7423])),
            [7423, 7422]
        );
    }

    #[test]
    fn listening_sockets_of_both_tables() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
           0: 0100007F:1CFE 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 555 1 0 100 0 0 10 0\n\
           1: 0100007F:97E0 0100007F:1CFF 01 00000000:00000000 00:00000000 00000000  1000        0 556 1 0 20 4 30 10 -1\n\
           2: 00000000:1CFF 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 557 1 0 100 0 0 10 0\n\
           3: 0A00000A:1D00 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 558 1 0 100 0 0 10 0\n";
        let tcp6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
           0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0 100 0 0 10 0\n\
           1: 00000000000000000000000001000000:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 778 1 0 100 0 0 10 0\n\
           2: 000080FE00000000FF4E1E5A1D2C3B4A:1F92 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 779 1 0 100 0 0 10 0\n";
        // Loopback and every address; not a connection (01), not another address (10.0.0.10, a
        // link-local IPv6).
        assert_eq!(parse_listening(tcp), [0x1CFE, 0x1CFF].into());
        assert_eq!(parse_listening(tcp6), [0x1F90, 0x1F91].into());
        assert!(parse_listening("").is_empty());
        // This process's own listener is found.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(listening_ports().contains(&port));
        drop(listener);
        assert!(!listening_ports().contains(&port));
    }

    #[test]
    fn tcp_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
           0: 0100007F:97E0 0100007F:1CFE 01 00000000:00000000 00:00000000 00000000  1000        0 555 1 0 20 4 30 10 -1\n\
           1: 0100007F:97E1 0100007F:1CFE 01 00000000:00000000 00:00000000 00000000  1000        0 666 1 0 20 4 30 10 -1\n\
           2: 0100007F:1CFE 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 555 1 0 100 0 0 10 0\n";
        let inodes: HashSet<u64> = [555].into();
        assert_eq!(parse_tcp_table(table, 7422, &inodes), [0x97E0].into());
    }
}

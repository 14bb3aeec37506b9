//! The agent: the managed processes and leaf nodes, and everything it writes to NATS — state in
//! KV `processes`, the `services_registry` entries, and log lines on `proc.logs.<name>`.
//!
//! One task (the keeper) does every KV write, so writes never overtake each other. It runs on every
//! change, every 2 s (CPU, RSS, leaf links) and after a reconnect; a write that fails (the hub is
//! down) leaves its key dirty for the next round: nothing here gives up or crashes on a NATS error.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use nats_ws::kv::{KvConfig, KvError, Store};
use nats_ws::{Client, HeaderMap};
use tokio::sync::{watch, Notify};

use crate::config::{Config, AGENT_NAME};
use crate::leaf::{self, LeafPorts};
use crate::model::{now_ms, Kind, LeafInfo, LogLine, ProcessState, RegistryEntry, RunState};
use crate::procfs::groups_usage;
use crate::supervisor::{Command, CommandError, Events, Managed, Spec};

pub use process_control::{PROCESSES_BUCKET, REGISTRY_BUCKET};
/// Registry entries expire this long after their last heartbeat.
pub const REGISTRY_TTL: Duration = Duration::from_millis(process_control::REGISTRY_TTL_MS);
pub const HEARTBEAT: Duration = Duration::from_millis(process_control::HEARTBEAT_MS);
/// CPU, RSS and leaf links are refreshed (and every state written) this often.
pub const TICK: Duration = Duration::from_secs(2);
/// How long leaf-add waits for the hub's /leafz to list the new leaf (a leaf joins in ~100 ms;
/// kept below the 10 s a page is likely to wait for the answer).
pub const LEAF_JOIN_TIMEOUT: Duration = Duration::from_secs(8);
/// One KV write or delete; beyond it the key stays dirty for the next round.
const KV_TIMEOUT: Duration = Duration::from_secs(3);

// Registry tags: `service:<name>` means "depends on the service <name>" (the console's /graph
// draws it as an edge); the agent and its leaves depend on no registered service.
const AGENT_TAGS: &[&str] = &["role:agent"];
const LEAF_TAGS: &[&str] = &["role:leaf"];

/// An answer other than success: the code and text of the service's error reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

/// Leaf operations run one at a time, and a request does not wait for its turn (a leaf-add can
/// take [`LEAF_JOIN_TIMEOUT`]): it is refused.
fn leaf_op_in_progress() -> ApiError {
    ApiError::new(
        409,
        "another leaf operation is in progress; try again when it is done",
    )
}

/// What the processes tell the agent: a state changed (mark it for the keeper), a line was printed
/// (publish it).
struct Notifier {
    client: Client,
    dirty: Mutex<BTreeSet<String>>,
    wake: Notify,
    /// Each process's lines published live in the current second.
    budgets: Mutex<BTreeMap<String, Budget>>,
}

/// Lines of one process published live per second, at most. One that prints faster (a loop gone
/// wild) would fill the agent's connection, where its replies and KV writes wait behind the lines
/// (refused once 64 MiB wait), and every page that watches it. The rest are counted and said in
/// one line; the log (`via.proc.logs`) keeps the newest lines whatever the rate.
pub const LIVE_LINES_PER_SECOND: u32 = 1000;

/// A process's live lines in the second that began at `since`.
struct Budget {
    since: std::time::Instant,
    sent: u32,
    held_back: u64,
}

impl Notifier {
    fn publish(&self, name: &str, line: &LogLine) {
        if let Ok(json) = serde_json::to_vec(line) {
            // Buffered by the client while disconnected, and held while the hub does not read
            // (both bounded); dropped beyond.
            let _ = self
                .client
                .publish(&process_control::log_subject(name), json);
        }
    }

    /// Looks at `name`'s budget once: with `line`, counts that line and says whether it is
    /// published live; without (a change of the process's state: exited, say), nothing is
    /// counted. Either way, the line that says how many were not published live in a second
    /// that is over (or, without `line`, so far), if any were held back.
    fn admit(&self, name: &str, line: bool) -> (bool, Option<LogLine>) {
        let now = std::time::Instant::now();
        let mut budgets = self.budgets.lock().expect("budgets lock");
        let budget = budgets.entry(name.to_owned()).or_insert(Budget {
            since: now,
            sent: 0,
            held_back: 0,
        });
        let second_over = now.duration_since(budget.since) >= Duration::from_secs(1);
        let held_back = match !line || second_over {
            true => std::mem::take(&mut budget.held_back),
            false => 0,
        };
        if second_over {
            budget.since = now;
            budget.sent = 0;
        }
        let live = line && budget.sent < LIVE_LINES_PER_SECOND;
        if live {
            budget.sent += 1;
        } else if line {
            budget.held_back += 1;
        }
        let notice = (held_back > 0).then(|| LogLine {
            ts: now_ms(),
            stream: crate::model::Stream::Stderr,
            line: format!(
                "via-agent: {held_back} lines not published live (more than \
                 {LIVE_LINES_PER_SECOND} a second); via.proc.logs keeps the newest"
            ),
        });
        (live, notice)
    }
}

impl Events for Notifier {
    fn changed(&self, name: &str) {
        if let (_, Some(notice)) = self.admit(name, false) {
            self.publish(name, &notice);
        }
        self.dirty
            .lock()
            .expect("dirty lock")
            .insert(name.to_owned());
        self.wake.notify_one();
    }

    fn log(&self, name: &str, line: &LogLine) {
        let (live, notice) = self.admit(name, true);
        if let Some(notice) = notice {
            self.publish(name, &notice);
        }
        if live {
            self.publish(name, line);
        }
    }
}

pub struct Agent {
    pub config: Config,
    pub client: Client,
    pub host: String,
    /// The service instance id, stamped on every state and registry entry.
    pub id: String,
    notifier: Arc<Notifier>,
    procs: Mutex<BTreeMap<String, Arc<Managed>>>,
    /// Keys of `processes` to delete (removed leaves).
    removed: Mutex<BTreeSet<String>>,
    leaf_ops: tokio::sync::Mutex<()>,
    stopping: AtomicBool,
    /// Reads of the hub's /leafz that failed in a row (see [`leaf::hub_view`]).
    leafz_failures: AtomicU64,
    /// Everything is stopped: the keeper's next successful round is its last.
    finishing: AtomicBool,
    /// Rounds asked for / done, so a caller can wait for its change to be written.
    rounds_asked: AtomicU64,
    rounds_done: watch::Sender<u64>,
}

struct Stores {
    processes: Store,
    registry: Store,
    /// The registry stream allows per-message TTL (nats-server 2.11+): puts carry `Nats-TTL`.
    per_key_ttl: bool,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Why one of the keeper's KV calls failed.
#[derive(Debug)]
enum KvFailure {
    Kv(KvError),
    TimedOut,
}

impl std::fmt::Display for KvFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KvFailure::Kv(e) => e.fmt(f),
            KvFailure::TimedOut => f.write_str("no answer in time"),
        }
    }
}

async fn with_timeout<T>(
    f: impl std::future::Future<Output = Result<T, KvError>>,
) -> Result<T, KvFailure> {
    match tokio::time::timeout(KV_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(KvFailure::Kv(e)),
        Err(_) => Err(KvFailure::TimedOut),
    }
}

impl Agent {
    /// Creates the agent and its processes (autostarting those that ask for it) and the keeper.
    pub fn start(config: Config, client: Client, id: String) -> Arc<Agent> {
        let notifier = Arc::new(Notifier {
            client: client.clone(),
            dirty: Mutex::new(BTreeSet::new()),
            wake: Notify::new(),
            budgets: Mutex::new(BTreeMap::new()),
        });
        let agent = Arc::new(Agent {
            host: hostname(),
            id,
            notifier,
            procs: Mutex::new(BTreeMap::new()),
            removed: Mutex::new(BTreeSet::new()),
            leaf_ops: tokio::sync::Mutex::new(()),
            stopping: AtomicBool::new(false),
            leafz_failures: AtomicU64::new(0),
            finishing: AtomicBool::new(false),
            rounds_asked: AtomicU64::new(0),
            rounds_done: watch::channel(0).0,
            client,
            config,
        });
        // Leaves of an earlier run are gone (they died with it): so are their folders.
        let _ = std::fs::remove_dir_all(agent.leaves_dir());
        for p in &agent.config.processes {
            let spec = Spec {
                name: p.name.clone(),
                kind: Kind::Process,
                command: p.command.clone(),
                program: p.program.clone(),
                args: p.args.clone(),
                env: p.env.clone(),
                cwd: p.cwd.clone(),
                restart: p.restart,
                backoff: p.backoff,
                tags: p.service.clone(),
                control: p.control,
                log_file: None,
                echo: p.echo,
            };
            let m = Managed::launch(
                spec,
                p.autostart,
                &agent.host,
                &agent.id,
                agent.notifier.clone(),
            );
            agent.notifier.changed(&p.name);
            agent
                .procs
                .lock()
                .expect("procs lock")
                .insert(p.name.clone(), m);
        }
        tokio::spawn(agent.clone().keeper());
        agent
    }

    fn leaves_dir(&self) -> std::path::PathBuf {
        self.config.agent.data_dir.join("leaves")
    }

    /// Every managed process and leaf, as they are now (the lock is not held after).
    fn all_procs(&self) -> Vec<Arc<Managed>> {
        self.procs
            .lock()
            .expect("procs lock")
            .values()
            .cloned()
            .collect()
    }

    pub fn get(&self, name: &str) -> Option<Arc<Managed>> {
        self.procs.lock().expect("procs lock").get(name).cloned()
    }

    pub fn list(&self) -> Vec<ProcessState> {
        let procs = self.all_procs();
        procs.iter().map(|m| m.snapshot()).collect()
    }

    /// The leaf nodes among the managed processes.
    fn leaf_procs(&self) -> Vec<Arc<Managed>> {
        self.procs
            .lock()
            .expect("procs lock")
            .values()
            .filter(|m| m.spec.kind == Kind::Leaf)
            .cloned()
            .collect()
    }

    pub fn leaves(&self) -> Vec<LeafInfo> {
        self.list().into_iter().filter_map(|s| s.leaf).collect()
    }

    /// Asks the keeper for a round and waits (bounded) until one that started after the ask ended.
    pub async fn flush(&self) {
        let target = self.rounds_asked.fetch_add(1, Ordering::SeqCst) + 1;
        self.notifier.wake.notify_one();
        let mut done = self.rounds_done.subscribe();
        let _ = tokio::time::timeout(KV_TIMEOUT * 2, done.wait_for(|d| *d >= target)).await;
    }

    /// Starts a leaf node and waits until the hub lists it.
    pub async fn add_leaf(&self, name: Option<String>) -> Result<LeafInfo, ApiError> {
        if let Some(n) = &name {
            if !leaf::valid_leaf_name(n) {
                return Err(ApiError::new(400, leaf::invalid_leaf_name(n)));
            }
            // Two servers of the same name in one leafnode graph: the hub refuses the leaf.
            if self
                .client
                .server_info()
                .is_some_and(|info| info.server_name == *n)
            {
                return Err(ApiError::new(
                    400,
                    format!("{n:?} is the hub's server_name: pick another leaf name"),
                ));
            }
        }
        let _guard = self
            .leaf_ops
            .try_lock()
            .map_err(|_| leaf_op_in_progress())?;
        if self.stopping.load(Ordering::SeqCst) {
            return Err(ApiError::new(500, "the agent is stopping"));
        }
        let max = self.config.agent.max_leaves;
        if self.leaves().len() >= max {
            return Err(ApiError::new(
                429,
                match max {
                    1 => "at most 1 leaf node runs at once; remove it first".to_owned(),
                    _ => format!("at most {max} leaf nodes run at once; remove one first"),
                },
            ));
        }
        let name = match name {
            Some(n) if self.get(&n).is_some() || n == AGENT_NAME => {
                return Err(ApiError::new(409, format!("{n:?} is already taken")))
            }
            Some(n) => n,
            None => leaf::first_free_name(|n| self.get(n).is_some()),
        };
        let internal = |e: std::io::Error| ApiError::new(500, format!("leaf {name}: {e}"));
        let dir = self.leaves_dir().join(&name);
        let store = dir.join("store");
        std::fs::create_dir_all(&store).map_err(internal)?;
        let ports = LeafPorts::pick().map_err(internal)?;
        let conf = dir.join("leaf.conf");
        let password = via_credentials::password(leaf::LEAF_USER)
            .map_err(|e| ApiError::new(500, format!("leaf {name}: {e}")))?;
        let listening = tokio::task::spawn_blocking(leaf::listening_ports)
            .await
            .unwrap_or_default();
        let hub_ports = leaf::remote_ports(
            self.config.agent.hub_leafnode_port,
            &self.config.agent.cluster_leafnode_ports,
            &listening,
        );
        let text = leaf::render_conf(&name, ports, &store, &hub_ports, password.as_deref());
        // It may hold the leaf user's password: readable by this user only.
        write_private(&conf, &text).map_err(internal)?;
        let spec = Spec {
            name: name.clone(),
            kind: Kind::Leaf,
            command: self.config.agent.nats_server.to_string_lossy().into_owned(),
            program: self.config.agent.nats_server.clone(),
            args: vec!["-c".to_owned(), conf.to_string_lossy().into_owned()],
            env: BTreeMap::new(),
            cwd: dir.clone(),
            restart: crate::config::RestartPolicy::OnFailure,
            backoff: Default::default(),
            tags: LEAF_TAGS.iter().map(|t| t.to_string()).collect(),
            control: true,
            log_file: Some(dir.join("leaf.log")),
            echo: false,
        };
        let info = LeafInfo {
            name: name.clone(),
            client_port: ports.client,
            ws_port: ports.ws,
            http_port: ports.http,
            connected: false,
            rtt: None,
            in_msgs: 0,
            out_msgs: 0,
            in_bytes: 0,
            out_bytes: 0,
        };
        let m = Managed::launch(spec, false, &self.host, &self.id, self.notifier.clone());
        m.update(|s| s.leaf = Some(info));
        self.removed.lock().expect("removed lock").remove(&name);
        self.procs
            .lock()
            .expect("procs lock")
            .insert(name.clone(), m.clone());
        // A new process: nothing else is queued for it. One that cannot even be spawned (no
        // nats-server there) is said at once, not after the wait for it to join.
        if let Err(CommandError::Spawn(why)) = m.command(Command::Start).await {
            self.remove(&name).await;
            return Err(ApiError::new(500, format!("leaf {name}: {why}")));
        }

        let deadline = tokio::time::Instant::now() + LEAF_JOIN_TIMEOUT;
        let mut last_error = String::from("not listed in the hub's /leafz");
        while tokio::time::Instant::now() < deadline {
            // The agent's stop waits for this operation: it ends the wait, and stops the leaf
            // with every other process.
            if self.stopping.load(Ordering::SeqCst) {
                return Err(ApiError::new(
                    500,
                    format!("leaf {name}: the agent is stopping"),
                ));
            }
            // The hub's /leafz unread (its node down), the leaf's own may say it joined another.
            let read = self.refresh_leaves(false).await;
            if let Some(info) = m.snapshot().leaf.filter(|l| l.connected) {
                self.flush().await;
                return Ok(info);
            }
            if let Err(e) = read {
                last_error = e;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let tail: Vec<String> = m.logs(5).into_iter().map(|l| l.line).collect();
        self.remove(&name).await;
        Err(ApiError::new(
            500,
            format!(
                "leaf {name} did not join the hub within {} s ({last_error}); its last output: {}",
                LEAF_JOIN_TIMEOUT.as_secs(),
                tail.join(" | ")
            ),
        ))
    }

    pub async fn remove_leaf(&self, name: &str) -> Result<(), ApiError> {
        let _guard = self
            .leaf_ops
            .try_lock()
            .map_err(|_| leaf_op_in_progress())?;
        match self.get(name) {
            Some(m) if m.spec.kind == Kind::Leaf => {
                self.remove(name).await;
                self.flush().await;
                Ok(())
            }
            _ => Err(ApiError::new(404, format!("no leaf node named {name:?}"))),
        }
    }

    /// Stops a leaf and forgets it: process, state key, registry entry (by the keeper), folder.
    async fn remove(&self, name: &str) {
        let Some(m) = self.get(name) else { return };
        let _ = m.command(Command::Shutdown).await;
        self.procs.lock().expect("procs lock").remove(name);
        self.removed
            .lock()
            .expect("removed lock")
            .insert(name.to_owned());
        let dir = self.leaves_dir().join(name);
        if let Err(e) = tokio::fs::remove_dir_all(&dir).await {
            crate::say!("via-agent: cannot remove {}: {e}", dir.display());
        }
        self.notifier.wake.notify_one();
    }

    /// Reads the hub's /leafz into every leaf's [`LeafInfo`]. Only the keeper's reads (`counted`,
    /// every 2 s) count towards the failures tolerated; a leaf-add's reads (every 100 ms) would
    /// use them up in a moment.
    async fn refresh_leaves(&self, counted: bool) -> Result<(), String> {
        let leaves = self.leaf_procs();
        if leaves.is_empty() {
            return Ok(());
        }
        let url = format!(
            "{}/leafz",
            self.config.agent.hub_monitoring_url.trim_end_matches('/')
        );
        let entries = match crate::http::get(&url, Duration::from_secs(2)).await {
            Ok(body) => leaf::parse_leafz(&body),
            Err(e) => Err(e),
        };
        let failures = if entries.is_ok() {
            self.leafz_failures.store(0, Ordering::Relaxed);
            0
        } else if counted {
            self.leafz_failures.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.leafz_failures.load(Ordering::Relaxed)
        };
        // Each leaf's own /leafz too: on a cluster a leaf may be linked to another node than the
        // one whose /leafz is read (it moves there when that node goes, and stays), and is
        // connected all the same.
        let own = futures::future::join_all(leaves.iter().map(|m| {
            let port = m.snapshot().leaf.map_or(0, |l| l.http_port);
            async move {
                if port == 0 {
                    return None;
                }
                let url = format!("http://127.0.0.1:{port}/leafz");
                let body = crate::http::get(&url, Duration::from_secs(2)).await.ok()?;
                leaf::parse_leafz(&body).ok()?.into_iter().next()
            }
        }))
        .await;
        let hub_port = self.config.agent.hub_leafnode_port;
        let result = entries.as_ref().map(|_| ()).map_err(Clone::clone);
        // Off the runtime's only thread: finding a leaf's sockets reads /proc (its fds and TCP
        // table), which can take a while on a busy host.
        let apply = move || Self::apply_leafz(&leaves, &entries, &own, failures, hub_port);
        let _ = tokio::task::spawn_blocking(apply).await;
        result
    }

    /// Takes what the hub's /leafz said (or that it could not be read, `failures` times in a
    /// row) into each leaf's state; a leaf the hub does not list, or whose hub could not be read,
    /// but whose own /leafz lists its link (`own`, by leaf) is connected: to another node of the
    /// hub's cluster.
    fn apply_leafz(
        leaves: &[Arc<Managed>],
        entries: &Result<Vec<leaf::LeafzEntry>, String>,
        own: &[Option<leaf::LeafzEntry>],
        failures: u64,
        hub_port: u16,
    ) {
        for (i, m) in leaves.iter().enumerate() {
            let state = m.snapshot();
            let ports = |pid| leaf::local_ports_to(pid, hub_port);
            let link = own
                .get(i)
                .cloned()
                .flatten()
                .filter(|_| state.pid.is_some());
            let found = match (
                leaf::hub_view(entries, failures, state.pid, m.name(), ports),
                link,
            ) {
                (Some(Some(e)), _) => Some(e),
                // Linked, whether the hub does not list it or could not be read.
                (_, Some(link)) => Some(link.seen_from_the_hub()),
                (Some(None), None) => None,
                // The hub unread a moment, the leaf's own unread too: as it was.
                (None, None) => continue,
            };
            let Some(mut info) = state.leaf.clone() else {
                continue;
            };
            let before = info.clone();
            info.connected = found.is_some();
            if let Some(e) = found {
                info.rtt = e.rtt;
                info.in_msgs = e.in_msgs;
                info.out_msgs = e.out_msgs;
                info.in_bytes = e.in_bytes;
                info.out_bytes = e.out_bytes;
            } else {
                info.rtt = None;
            }
            if info != before {
                m.update(|s| s.leaf = Some(info));
            }
        }
    }

    /// Stops every process, all at once (each has its own grace: a stop takes the longest one's
    /// time, not their sum), then has the keeper write their final states and delete every
    /// registry entry, the agent's own included.
    pub async fn shutdown(self: &Arc<Self>) {
        self.stopping.store(true, Ordering::SeqCst);
        let _guard = self.leaf_ops.lock().await;
        let stops = self.all_procs().into_iter().map(|m| async move {
            let _ = m.command(Command::Shutdown).await;
            if m.spec.kind == Kind::Leaf {
                self.procs.lock().expect("procs lock").remove(m.name());
                self.removed
                    .lock()
                    .expect("removed lock")
                    .insert(m.name().to_owned());
                let _ = std::fs::remove_dir_all(self.leaves_dir().join(m.name()));
            }
        });
        futures::future::join_all(stops).await;
        self.finishing.store(true, Ordering::SeqCst);
        self.flush().await;
    }

    /// SIGKILL to every process group the agent runs, at once (a second Ctrl-C: the user will
    /// not wait for the graceful stop). Nothing is waited for or deregistered.
    pub fn kill_all_now(&self) {
        for m in self.all_procs() {
            m.kill_now();
        }
    }

    /// What should be in the registry now: the agent, every running process with service tags,
    /// every running leaf the hub lists. Nothing once stopping.
    fn wanted_registry(&self) -> BTreeMap<String, (u32, Vec<String>, &'static str)> {
        let mut wanted = BTreeMap::new();
        if self.stopping.load(Ordering::SeqCst) {
            return wanted;
        }
        let tags = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        wanted.insert(
            AGENT_NAME.to_owned(),
            (std::process::id(), tags(AGENT_TAGS), "agent"),
        );
        let procs = self.all_procs();
        for m in procs {
            let s = m.snapshot();
            let (Some(pid), RunState::Running) = (s.pid, s.state) else {
                continue;
            };
            match s.kind {
                Kind::Leaf if s.leaf.as_ref().is_some_and(|l| l.connected) => {
                    wanted.insert(s.name, (pid, m.spec.tags.clone(), "leaf"));
                }
                Kind::Process if !m.spec.tags.is_empty() => {
                    wanted.insert(s.name, (pid, m.spec.tags.clone(), "process"));
                }
                _ => {}
            }
        }
        wanted
    }

    async fn open_stores(&self) -> Result<Stores, KvFailure> {
        let js = self.client.jetstream();
        let open = |config: KvConfig| {
            let js = js.clone();
            async move {
                let bucket = config.bucket.clone();
                match js.key_value(&bucket).await {
                    // A page may create it at the same moment: a create that lost the race is
                    // refused ("stream name already in use", or on 2.9 "subjects overlap");
                    // the bucket is there if it is there.
                    Err(KvError::BucketNotFound { .. }) => {
                        match js.create_key_value(config).await {
                            Err(e) => js.key_value(&bucket).await.map_err(|_| e),
                            created => created,
                        }
                    }
                    other => other,
                }
            }
        };
        // Replicated on a cluster (the pages create theirs alike: src/components/directory.rs).
        let replicas = js.default_replicas().await;
        let processes =
            with_timeout(open(KvConfig::new(PROCESSES_BUCKET).replicas(replicas))).await?;
        let registry = with_timeout(open(
            KvConfig::new(REGISTRY_BUCKET)
                .replicas(replicas)
                .ttl(REGISTRY_TTL)
                .limit_marker_ttl(Duration::from_secs(5)),
        ))
        .await?;
        // 2.9/2.10 accept allow_msg_ttl and drop it: believe the stream's own config.
        let per_key_ttl =
            tokio::time::timeout(KV_TIMEOUT, js.stream_info(&format!("KV_{REGISTRY_BUCKET}")))
                .await
                .ok()
                .and_then(Result::ok)
                .is_some_and(|info| info.config.allow_msg_ttl);
        Ok(Stores {
            processes,
            registry,
            per_key_ttl,
        })
    }

    /// The single writer of KV (see the module docs).
    async fn keeper(self: Arc<Self>) {
        let mut stores: Option<Stores> = None;
        let mut registered: BTreeMap<String, u64> = BTreeMap::new();
        let mut heartbeat_due = true;
        let mut cleaned = false;
        let mut last_error = String::new();
        let mut statuses = self.client.status_stream();
        let mut tick = tokio::time::interval(TICK);
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.notifier.wake.notified() => {}
                _ = tick.tick() => {
                    let procs = self.all_procs();
                    // One pass over /proc for every group, off the runtime's thread.
                    let pgids: Vec<u32> = procs.iter().filter_map(|m| m.pgid()).collect();
                    if !pgids.is_empty() {
                        let usage = tokio::task::spawn_blocking(move || groups_usage(&pgids))
                            .await
                            .unwrap_or_default();
                        for m in &procs {
                            m.sample(&usage);
                        }
                    }
                    let _ = self.refresh_leaves(true).await;
                    self.mark_all_dirty();
                }
                _ = heartbeat.tick() => heartbeat_due = true,
                status = statuses.next() => match status {
                    // The client was closed: nothing more can be written.
                    None => return,
                    Some(s) if s.is_connected() => {
                        // After a reconnect (maybe to a restarted hub): write everything again.
                        self.mark_all_dirty();
                        heartbeat_due = true;
                    }
                    Some(_) => {}
                },
            }
            let round = self.rounds_asked.load(Ordering::SeqCst);
            let finishing = self.finishing.load(Ordering::SeqCst);
            if !self.client.status().is_connected() {
                continue;
            }
            let result = async {
                if stores.is_none() {
                    stores = Some(self.open_stores().await?);
                }
                let s = stores.as_ref().expect("opened");
                if !cleaned {
                    self.clean_stale_states(s).await?;
                    cleaned = true;
                }
                self.write_states(s).await?;
                self.write_registry(s, &mut registered, heartbeat_due)
                    .await?;
                heartbeat_due = false;
                Ok::<(), KvFailure>(())
            }
            .await;
            match result {
                Ok(()) => {
                    last_error.clear();
                    self.rounds_done.send_if_modified(|d| {
                        let newer = round > *d;
                        *d = (*d).max(round);
                        newer
                    });
                    if finishing {
                        return;
                    }
                }
                Err(e) => {
                    // Deleted under us: open (and create) the buckets again.
                    if matches!(&e, KvFailure::Kv(e) if e.is_bucket_gone()) {
                        stores = None;
                    }
                    let e = e.to_string();
                    if e != last_error {
                        crate::say!(
                            "via-agent: writing to NATS failed (retrying every {} s): {e}",
                            TICK.as_secs()
                        );
                        last_error = e;
                    }
                }
            }
        }
    }

    fn mark_all_dirty(&self) {
        let names: Vec<String> = self
            .procs
            .lock()
            .expect("procs lock")
            .keys()
            .cloned()
            .collect();
        self.notifier
            .dirty
            .lock()
            .expect("dirty lock")
            .extend(names);
    }

    /// Deletes the states of processes this agent does not run (left the config, leaves of an
    /// earlier run).
    async fn clean_stale_states(&self, s: &Stores) -> Result<(), KvFailure> {
        let keys = with_timeout(s.processes.keys()).await?;
        for key in keys {
            if self.get(&key).is_none() {
                with_timeout(s.processes.delete(&key)).await?;
            }
        }
        Ok(())
    }

    async fn write_states(&self, s: &Stores) -> Result<(), KvFailure> {
        let dirty = std::mem::take(&mut *self.notifier.dirty.lock().expect("dirty lock"));
        let removed = std::mem::take(&mut *self.removed.lock().expect("removed lock"));
        let mut failed = None;
        let mut retry_dirty = BTreeSet::new();
        let mut retry_removed = BTreeSet::new();
        for name in dirty {
            let Some(m) = self.get(&name) else { continue };
            if failed.is_some() {
                retry_dirty.insert(name);
                continue;
            }
            let json = serde_json::to_vec(&m.snapshot()).expect("state serialises");
            if let Err(e) = with_timeout(s.processes.put(&name, json)).await {
                failed = Some(e);
                retry_dirty.insert(name);
            }
        }
        for name in removed {
            if self.get(&name).is_some() {
                continue;
            }
            if failed.is_some() {
                retry_removed.insert(name);
                continue;
            }
            if let Err(e) = with_timeout(s.processes.delete(&name)).await {
                failed = Some(e);
                retry_removed.insert(name);
            }
        }
        self.notifier
            .dirty
            .lock()
            .expect("dirty lock")
            .extend(retry_dirty);
        self.removed
            .lock()
            .expect("removed lock")
            .extend(retry_removed);
        failed.map_or(Ok(()), Err)
    }

    async fn write_registry(
        &self,
        s: &Stores,
        registered: &mut BTreeMap<String, u64>,
        heartbeat_due: bool,
    ) -> Result<(), KvFailure> {
        let wanted = self.wanted_registry();
        let gone: Vec<String> = registered
            .keys()
            .filter(|k| !wanted.contains_key(*k))
            .cloned()
            .collect();
        for name in gone {
            with_timeout(s.registry.delete(&name)).await?;
            registered.remove(&name);
        }
        let mut headers = HeaderMap::new();
        if s.per_key_ttl {
            headers.insert("Nats-TTL", format!("{}s", REGISTRY_TTL.as_secs()));
        }
        let now = now_ms();
        for (name, (pid, tags, kind)) in wanted {
            if registered.contains_key(&name) && !heartbeat_due {
                continue;
            }
            let registered_at = *registered.get(&name).unwrap_or(&now);
            let entry = RegistryEntry {
                name: name.clone(),
                host: self.host.clone(),
                pid,
                registered_at,
                heartbeat_at: now,
                tags,
                kind: kind.to_owned(),
                agent: self.id.clone(),
            };
            let json = serde_json::to_vec(&entry).expect("entry serialises");
            with_timeout(s.registry.put_with_headers(&name, json, &headers)).await?;
            registered.insert(name, registered_at);
        }
        Ok(())
    }
}

/// Writes `text` to `path` readable and writable by its owner only.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // The mode above applies to a new file only: an older one keeps its own.
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(text.as_bytes())
}

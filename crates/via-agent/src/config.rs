//! `via-agent.toml`: the agent's settings and the processes it runs. The file is trusted (it is
//! part of the repository); requests only ever *name* one of its processes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

// What happens when a process exits on its own (`never` | `on-failure` | `always`, strictly: a
// typo is an error); the name a process may have, and the one it may not.
pub use process_control::{valid_process_name, RestartPolicy, AGENT_NAME};

/// Delays between automatic restarts: `initial` doubling up to `max`; a run that lasted at least
/// `reset_after` starts the schedule again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub reset_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
            reset_after: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The wait before the restart that follows `failures` quick failures in a row (0-based).
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 1u32.checked_shl(failures.min(31)).unwrap_or(u32::MAX);
        self.initial
            .checked_mul(factor)
            .map_or(self.max, |d| d.min(self.max))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    pub nats_url: String,
    pub max_leaves: usize,
    pub hub_leafnode_port: u16,
    /// The leafnode ports of the hub's cluster's other nodes on 127.0.0.1 (`bash nats.sh
    /// cluster`: 7423, 7424): a leaf added while the hub's port is down joins one of them.
    pub cluster_leafnode_ports: Vec<u16>,
    /// `http://host:port` of the hub's monitoring endpoints (`/leafz`).
    pub hub_monitoring_url: String,
    pub nats_server: PathBuf,
    /// Absolute; leaf nodes live in `<data_dir>/leaves/<name>/`.
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProcessConfig {
    pub name: String,
    /// As written (what the state shows).
    pub command: String,
    /// What is executed: a relative path (`target/debug/via-worker`) resolved against the config
    /// file's folder, whatever `cwd` is (for a relative program, std leaves it to the platform
    /// whether the parent's or the new working folder counts); a bare name as written, found
    /// on PATH.
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Absolute.
    pub cwd: PathBuf,
    pub autostart: bool,
    pub restart: RestartPolicy,
    pub backoff: Backoff,
    /// Registry tags; a process with tags is registered in `services_registry` while it runs.
    pub service: Vec<String>,
    /// Whether requests may start, stop and restart it.
    pub control: bool,
    /// Whether its output also goes to the agent's stderr, each line prefixed `[name]` (so that
    /// `./run.sh` shows trunk's build errors in the terminal).
    pub echo: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub agent: AgentConfig,
    pub processes: Vec<ProcessConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    nats_url: Option<String>,
    max_leaves: Option<usize>,
    hub_leafnode_port: Option<u16>,
    #[serde(default)]
    cluster_leafnode_ports: Vec<u16>,
    hub_monitoring_url: Option<String>,
    nats_server: Option<String>,
    data_dir: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProcess {
    name: String,
    command: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    cwd: Option<String>,
    #[serde(default = "yes")]
    autostart: bool,
    /// Default: on-failure.
    #[serde(default)]
    restart: RestartPolicy,
    backoff_initial_ms: Option<u64>,
    backoff_max_ms: Option<u64>,
    backoff_reset_ms: Option<u64>,
    #[serde(default)]
    service: Vec<String>,
    #[serde(default = "yes")]
    control: bool,
    #[serde(default)]
    echo: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    agent: RawAgent,
    #[serde(default)]
    process: Vec<RawProcess>,
}

/// The shortest first wait before an automatic restart.
pub const MIN_BACKOFF_MS: u64 = 100;

impl Config {
    /// Reads the file; relative paths in it resolve against its folder.
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
        let path = std::path::absolute(path).map_err(|e| e.to_string())?;
        let base = path.parent().unwrap_or(Path::new("/"));
        Config::parse(&text, base, |k| {
            std::env::var(k).ok().filter(|v| !v.is_empty())
        })
        .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses `text`; `base` is the config file's folder, `env` looks up the environment
    /// (`VIA_NATS_URL`, `NATS_SERVER_BIN`, `PATH` override or complete the file).
    pub fn parse(
        text: &str,
        base: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, String> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        let resolve = |p: &str| base.join(p);
        let nats_server = match env("NATS_SERVER_BIN").or(raw.agent.nats_server) {
            Some(p) if p.contains('/') => resolve(&p),
            Some(p) => find_on_path(&p, env("PATH").as_deref()).unwrap_or_else(|| PathBuf::from(p)),
            None => find_on_path("nats-server", env("PATH").as_deref())
                .unwrap_or_else(|| PathBuf::from("/usr/sbin/nats-server")),
        };
        let hub_monitoring_url = raw
            .agent
            .hub_monitoring_url
            .unwrap_or_else(|| "http://127.0.0.1:8222".to_owned());
        if !hub_monitoring_url.starts_with("http://") {
            return Err(format!(
                "hub_monitoring_url {hub_monitoring_url:?}: only http:// is supported"
            ));
        }
        let agent = AgentConfig {
            nats_url: env("VIA_NATS_URL")
                .or(raw.agent.nats_url)
                .unwrap_or_else(|| "nats://127.0.0.1:4222".to_owned()),
            max_leaves: raw.agent.max_leaves.unwrap_or(8),
            hub_leafnode_port: raw.agent.hub_leafnode_port.unwrap_or(7422),
            cluster_leafnode_ports: raw.agent.cluster_leafnode_ports,
            hub_monitoring_url,
            nats_server,
            data_dir: resolve(raw.agent.data_dir.as_deref().unwrap_or("data")),
        };
        let mut processes: Vec<ProcessConfig> = Vec::new();
        for p in raw.process {
            if !valid_process_name(&p.name) || p.name == AGENT_NAME {
                return Err(format!(
                    "process name {:?}: use 1–64 letters, digits, '-' or '_' (and not {AGENT_NAME:?})",
                    p.name
                ));
            }
            if processes.iter().any(|q| q.name == p.name) {
                return Err(format!("process {:?} is named twice", p.name));
            }
            if p.command.is_empty() {
                return Err(format!("process {:?}: command is empty", p.name));
            }
            if p.service.iter().any(|t| t.is_empty()) {
                return Err(format!("process {:?}: empty service tag", p.name));
            }
            if p.backoff_initial_ms.is_some_and(|ms| ms < MIN_BACKOFF_MS) {
                // 0 with restart = "always" would fork as fast as the process can exit.
                return Err(format!(
                    "process {:?}: backoff_initial_ms must be at least {MIN_BACKOFF_MS}",
                    p.name
                ));
            }
            let defaults = Backoff::default();
            let ms = |v: Option<u64>, d: Duration| v.map_or(d, Duration::from_millis);
            // The cap bounds every wait: below the first wait (0, say) it would undo the rule above.
            // Without one, the default cap, or the first wait if that is longer.
            let initial = ms(p.backoff_initial_ms, defaults.initial);
            let max = ms(p.backoff_max_ms, defaults.max.max(initial));
            if max < initial {
                return Err(format!(
                    "process {:?}: backoff_max_ms must be at least backoff_initial_ms ({} ms)",
                    p.name,
                    initial.as_millis()
                ));
            }
            processes.push(ProcessConfig {
                cwd: resolve(p.cwd.as_deref().unwrap_or(".")),
                backoff: Backoff {
                    initial,
                    max,
                    reset_after: ms(p.backoff_reset_ms, defaults.reset_after),
                },
                name: p.name,
                program: match p.command.contains('/') {
                    true => resolve(&p.command),
                    false => PathBuf::from(&p.command),
                },
                command: p.command,
                args: p.args,
                env: p.env,
                autostart: p.autostart,
                restart: p.restart,
                service: p.service,
                control: p.control,
                echo: p.echo,
            });
        }
        Ok(Config { agent, processes })
    }
}

fn find_on_path(program: &str, path: Option<&str>) -> Option<PathBuf> {
    path?
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_and_relative_paths() {
        let text = r#"
            [[process]]
            name = "app"
            command = "trunk"
            args = ["serve"]
            service = ["service:via/app", "depends:nats"]
        "#;
        let c = Config::parse(text, Path::new("/repo"), no_env).unwrap();
        assert_eq!(c.agent.nats_url, "nats://127.0.0.1:4222");
        assert_eq!(c.agent.max_leaves, 8);
        assert_eq!(c.agent.hub_leafnode_port, 7422);
        assert!(c.agent.cluster_leafnode_ports.is_empty());
        assert_eq!(c.agent.hub_monitoring_url, "http://127.0.0.1:8222");
        assert_eq!(c.agent.data_dir, Path::new("/repo/data"));
        assert_eq!(c.agent.nats_server, Path::new("/usr/sbin/nats-server"));
        let p = &c.processes[0];
        assert_eq!(p.cwd, Path::new("/repo/."));
        assert_eq!(p.program, Path::new("trunk"));
        assert!(p.autostart && p.control && !p.echo);
        assert_eq!(p.restart, RestartPolicy::OnFailure);
        assert_eq!(p.backoff, Backoff::default());
        assert_eq!(p.service, ["service:via/app", "depends:nats"]);
    }

    #[test]
    fn everything_set_and_env_overrides() {
        let text = r#"
            [agent]
            nats_url = "nats://10.0.0.1:4222"
            max_leaves = 2
            hub_leafnode_port = 17422
            cluster_leafnode_ports = [17423, 17424]
            hub_monitoring_url = "http://127.0.0.1:18222"
            nats_server = "bin/nats-server"
            data_dir = "/var/lib/via"

            [[process]]
            name = "crash"
            command = "bin/sh"
            args = ["-c", "exit 3"]
            env = { A = "1" }
            cwd = "sub"
            autostart = false
            restart = "always"
            backoff_initial_ms = 100
            backoff_max_ms = 400
            backoff_reset_ms = 1000
            control = false
            echo = true
        "#;
        let env = |k: &str| (k == "VIA_NATS_URL").then(|| "nats://127.0.0.1:1".to_owned());
        let c = Config::parse(text, Path::new("/etc/via"), env).unwrap();
        assert_eq!(c.agent.nats_url, "nats://127.0.0.1:1");
        assert_eq!(c.agent.nats_server, Path::new("/etc/via/bin/nats-server"));
        assert_eq!(c.agent.data_dir, Path::new("/var/lib/via"));
        assert_eq!(c.agent.cluster_leafnode_ports, [17423, 17424]);
        let p = &c.processes[0];
        assert_eq!(p.cwd, Path::new("/etc/via/sub"));
        assert_eq!(p.command, "bin/sh");
        assert_eq!(p.program, Path::new("/etc/via/bin/sh"));
        assert_eq!(p.env["A"], "1");
        assert_eq!(p.restart, RestartPolicy::Always);
        assert!(!p.autostart && !p.control && p.echo);
        assert_eq!(p.backoff.delay(5), Duration::from_millis(400));
        let env = |k: &str| (k == "NATS_SERVER_BIN").then(|| "/opt/nats".to_owned());
        let c = Config::parse(text, Path::new("/etc/via"), env).unwrap();
        assert_eq!(c.agent.nats_server, Path::new("/opt/nats"));
    }

    #[test]
    fn refuses_what_it_cannot_run() {
        let bad = [
            "[[process]]\nname = \"a b\"\ncommand = \"x\"",
            "[[process]]\nname = \"via-agent\"\ncommand = \"x\"",
            "[[process]]\nname = \"a\"\ncommand = \"\"",
            "[[process]]\nname = \"a\"\ncommand = \"x\"\n[[process]]\nname = \"a\"\ncommand = \"y\"",
            "[[process]]\nname = \"a\"\ncommand = \"x\"\nrestart = \"sometimes\"",
            "[[process]]\nname = \"a\"\ncommand = \"x\"\ncomand = \"typo\"",
            "[[process]]\nname = \"a\"\ncommand = \"x\"\nbackoff_initial_ms = 0",
            "[[process]]\nname = \"a\"\ncommand = \"x\"\nbackoff_initial_ms = 99",
            // A cap under the first wait: restarts as fast as the process exits.
            "[[process]]\nname = \"a\"\ncommand = \"x\"\nbackoff_max_ms = 0",
            "[[process]]\nname = \"a\"\ncommand = \"x\"\nbackoff_initial_ms = 500\nbackoff_max_ms = 200",
            "[agent]\nhub_monitoring_url = \"https://x\"",
        ];
        for text in bad {
            assert!(
                Config::parse(text, Path::new("/"), no_env).is_err(),
                "{text}"
            );
        }
    }

    #[test]
    fn backoff_doubles_to_its_cap() {
        let b = Backoff::default();
        let secs: Vec<u64> = (0..8).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn the_repository_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../via-agent.toml");
        let c = Config::load(&path).unwrap();
        let app = c.processes.iter().find(|p| p.name == "app").unwrap();
        assert_eq!(app.command, "bash");
        assert_eq!(app.args, ["scripts/app.sh"]);
        assert!(app.echo);
        assert_eq!(app.restart, RestartPolicy::OnFailure);
        assert!(app.autostart);
        assert_eq!(app.service, ["role:app"]);
        // The workers /workers adds and kills: the workspace's binary, started only by request,
        // left down when it dies, each with its process name as its worker id.
        let workers: Vec<_> = c
            .processes
            .iter()
            .filter(|p| p.name.starts_with("worker-"))
            .collect();
        assert_eq!(workers.len(), 4);
        for (i, w) in workers.iter().enumerate() {
            assert_eq!(w.name, format!("worker-{}", i + 1));
            assert_eq!(
                w.program,
                path.parent().unwrap().join("target/debug/via-worker")
            );
            assert_eq!(w.args, ["--id", w.name.as_str()]);
            assert!(!w.autostart && w.control && !w.echo);
            assert_eq!(w.restart, RestartPolicy::Never);
            assert_eq!(w.service, ["role:worker"]);
        }
    }
}

//! `via-agent [--config PATH]`: connects to NATS, runs the configured processes, serves
//! `process-control`, and on SIGINT, SIGTERM or SIGHUP (the terminal closed) stops every child and deregisters before exiting 0.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use nats_ws::service::{EndpointConfig, ServiceConfig};
use tokio::signal::unix::{signal, SignalKind};
use via_agent::agent::{Agent, ApiError};
use via_agent::api;
use via_agent::config::Config;
use via_agent::say;

/// Requests handled at once (see `run`).
const MAX_IN_FLIGHT: usize = 32;

const USAGE: &str = "usage: via-agent [--config PATH]   (default ./via-agent.toml; env VIA_NATS_URL overrides the NATS url)";

fn main() -> std::process::ExitCode {
    // Stoppable from the first step, whatever was inherited: a program started in the background
    // by a shell without job control (`./run.sh &`, a script's `&`) begins with SIGINT ignored,
    // and the agent's own handlers come only after it has ended a killed agent's leftovers (up
    // to 4 s); until then the signals do what they do by default, and end it. (SIGHUP is left
    // as it was given: `nohup` ignores it on purpose.)
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: setting a signal's disposition to its default, before any thread exists.
        unsafe { libc::signal(signal, libc::SIG_DFL) };
    }
    let mut config_path = PathBuf::from("via-agent.toml");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" | "-c" => match args.next() {
                Some(p) => config_path = PathBuf::from(p),
                None => return fail(USAGE),
            },
            "--help" | "-h" => {
                println!("{USAGE}");
                return std::process::ExitCode::SUCCESS;
            }
            _ => return fail(USAGE),
        }
    }
    let config = match Config::load(&config_path) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    // Held until the process ends (the kernel lets go of it however it ends).
    let (mut one_agent, killed_agent) = match lock_data_dir(&config.agent.data_dir) {
        Ok(lock) => lock,
        Err(e) => return fail(&e),
    };
    // What the agent before this one left running when it was killed (its processes' children):
    // stopped before anything is started again beside them. Every process this agent starts
    // carries its own run's mark in turn (set while this is the only thread).
    let dir = std::fs::canonicalize(&config.agent.data_dir)
        .unwrap_or_else(|_| config.agent.data_dir.clone())
        .to_string_lossy()
        .into_owned();
    let ended = killed_agent
        .map(|pid| via_agent::leftovers::end(&via_agent::leftovers::run_mark(pid, &dir)))
        .unwrap_or_default();
    // Only now the lock names this agent alone: one stopped while ending the leftovers (up to
    // 4 s, before its signal handlers) leaves the killed agent's pid first, for the next one to
    // end them.
    claim(&mut one_agent);
    std::env::set_var(
        via_agent::leftovers::MARK,
        via_agent::leftovers::run_mark(std::process::id(), &dir),
    );
    // Its processes sign in from the same credentials file, whatever their working directory
    // (set while this is the only thread).
    if std::env::var_os("VIA_CREDENTIALS").is_none() {
        if let Ok(path) = std::fs::canonicalize(via_credentials::file()) {
            std::env::set_var("VIA_CREDENTIALS", path);
        }
    }
    // (Said once the environment is set: the output's thread starts here.)
    if !ended.found.is_empty() {
        say!(
            "via-agent: stopped {} process(es) that the agent before this one left running when it was killed (pids {:?})",
            ended.found.len(),
            ended.found
        );
    }
    if !ended.left.is_empty() {
        say!(
            "via-agent: {} of them did not end, even with SIGKILL (pids {:?})",
            ended.left.len(),
            ended.left
        );
    }
    // current_thread: every child is forked from this thread, which lives as long as the agent,
    // so PR_SET_PDEATHSIG (set in each child) fires only when the agent itself dies.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    let result = runtime.block_on(run(config));
    // Ended by itself, having stopped what it started: nothing for the next agent to clean up.
    let _ = one_agent.set_len(0);
    // What the agent said last, if stderr takes it.
    via_agent::output::stderr().flush(Duration::from_secs(1));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// One agent per data directory: a second would delete the first's leaf folders at its start,
/// join its queue group (answering half of its requests about processes it does not run) and
/// overwrite its state keys. An advisory lock (`flock`) on `<data_dir>/via-agent.lock`, which
/// holds the pid of the agent that has it, and is emptied when that agent ends by itself. Returns
/// the lock, and the pid left in it by an agent that did not (it was killed). While this agent
/// ends that one's leftovers the lock holds both pids, the killed one's first (what the next
/// agent must end if this one is stopped meanwhile) and this one's last (who holds it); [`claim`]
/// then leaves this agent's alone.
fn lock_data_dir(dir: &std::path::Path) -> Result<(std::fs::File, Option<u32>), String> {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    let path = dir.join("via-agent.lock");
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    // SAFETY: flock on a descriptor this function owns; no memory is involved.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::WouldBlock {
            return Err(format!("cannot lock {}: {error}", path.display()));
        }
        let mut pids = String::new();
        let _ = file.read_to_string(&mut pids);
        return Err(format!(
            "another via-agent (pid {}) is running with data directory {}: stop it first, or give this one another data_dir",
            pids.lines().last().unwrap_or_default().trim(),
            dir.display()
        ));
    }
    let mut before = String::new();
    let _ = file.read_to_string(&mut before);
    let killed = before.lines().next().and_then(|l| l.trim().parse().ok());
    if let Some(killed) = killed {
        write_lock(&mut file, &format!("{killed}\n{}\n", std::process::id()));
    }
    Ok((file, killed))
}

/// Leaves only this agent's pid in the lock (see [`lock_data_dir`]).
fn claim(lock: &mut std::fs::File) {
    write_lock(lock, &format!("{}\n", std::process::id()));
}

fn write_lock(lock: &mut std::fs::File, text: &str) {
    use std::io::Seek;
    let _ = lock.set_len(0);
    let _ = lock.rewind();
    let _ = lock.write_all(text.as_bytes());
}

fn fail(message: &str) -> std::process::ExitCode {
    // Not eprintln!: it panics when stderr is closed.
    let _ = writeln!(std::io::stderr(), "via-agent: {message}");
    std::process::ExitCode::FAILURE
}

async fn run(config: Config) -> Result<(), String> {
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    // The terminal closing: stop as for SIGTERM (its default would kill the agent without
    // stopping the children's groups).
    let mut sighup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;

    let url = config.agent.nats_url.clone();
    let options = nats_ws::Options::new(url.clone())
        .name("via-agent")
        .reconnect(nats_ws::ReconnectPolicy {
            initial_delay: Duration::from_millis(250),
            factor: 1.5,
            max_delay: Duration::from_secs(2),
            max_attempts: None,
            jitter: Duration::from_millis(100),
        });
    let options = via_credentials::sign_in(options, "agent")?;
    // Started, not awaited: the agent runs its processes even while the hub is down, and
    // connects (and registers) when it comes up.
    let client = nats_ws::start(options).map_err(|e| format!("{url}: {e}"))?;
    let service = nats_ws::service::add(
        &client,
        ServiceConfig::new(process_control::SERVICE_NAME, env!("CARGO_PKG_VERSION"))
            .description("via-agent: starts, stops and watches the processes of via-agent.toml and leaf nodes")
            .metadata("host", std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim()),
    )
    .map_err(|e| format!("cannot add service process-control: {e}"))?;
    // Every endpoint before any process starts: a failure here leaves nothing running.
    let mut endpoints = Vec::new();
    for (name, subject) in api::ENDPOINTS {
        let endpoint = service
            .endpoint_with(EndpointConfig::new(*name).subject(*subject).metadata(
                process_control::EXAMPLE_METADATA,
                process_control::example_request(name),
            ))
            .map_err(|e| format!("cannot add endpoint {name}: {e}"))?;
        endpoints.push((*name, *subject, endpoint));
    }
    let agent = Agent::start(config, client.clone(), service.id().to_owned());
    say!(
        "via-agent: service process-control {} on {url}; {} process(es) configured",
        service.id(),
        agent.config.processes.len()
    );

    // Requests handled at once, over every endpoint; beyond, they are refused rather than queued
    // (a queued request would run long after its requester gave up).
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    // An endpoint whose subscription ends (the server refused it: the agent's permissions) stops
    // the service: an agent that can no longer be asked anything stops too, rather than go on
    // heart-beating a registry entry that nobody can reach.
    let (ended_tx, mut ended) = tokio::sync::mpsc::unbounded_channel::<String>();
    for (name, subject, mut endpoint) in endpoints {
        let agent = agent.clone();
        let in_flight = in_flight.clone();
        let ended_tx = ended_tx.clone();
        tokio::spawn(async move {
            while let Some(req) = endpoint.next().await {
                let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                    let e = api::busy();
                    let _ = req.respond_error(e.code, &e.message, api::error_body(&e));
                    continue;
                };
                let agent = Arc::clone(&agent);
                // Each request on its own task: a leaf-add waiting for its leaf must not hold up a list.
                tokio::spawn(async move {
                    let _permit = permit;
                    let sent = match api::handle(&agent, name, req.payload()).await {
                        Ok(reply) => req.respond(serde_json::to_vec(&reply).expect("json")),
                        Err(e) => req.respond_error(e.code, &e.message, api::error_body(&e)),
                    };
                    // The requester must not be left to time out: tell it why (this one is small).
                    if let Err(e) = sent {
                        let e = ApiError::new(500, format!("cannot send the {name} reply: {e}"));
                        if let Err(e) = req.respond_error(e.code, &e.message, api::error_body(&e)) {
                            say!("via-agent: cannot answer a {name} request: {e}");
                        }
                    }
                });
            }
            let why = endpoint.stats().last_error;
            let _ = ended_tx.send(format!("endpoint {name} ({subject}) stopped: {why}"));
        });
    }

    let failure = tokio::select! {
        _ = sigint.recv() => None,
        _ = sigterm.recv() => None,
        _ = sighup.recv() => None,
        Some(why) = ended.recv() => Some(why),
    };
    match &failure {
        Some(why) => say!("via-agent: {why}; stopping every process"),
        None => say!("via-agent: stopping every process (again to kill them at once)"),
    };
    service.stop().await;
    // A second signal: the user will not wait for the graceful stop.
    let forced = tokio::select! {
        _ = agent.shutdown() => false,
        _ = sigint.recv() => true,
        _ = sigterm.recv() => true,
        _ = sighup.recv() => true,
    };
    if forced {
        agent.kill_all_now();
        say!("via-agent: killed every process");
        return Err("stopped at once by a second signal".into());
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), client.flush()).await;
    client.close();
    say!("via-agent: stopped");
    match failure {
        Some(why) => Err(why),
        None => Ok(()),
    }
}

//! One managed process: its task spawns it, reads its output, restarts it per its policy, and
//! stops it on request. Knows nothing of NATS: what happens is told to an [`Events`] sink.
//!
//! Every child leads its own process group (so a Ctrl-C at the terminal reaches only the agent,
//! and stopping a child stops what it started), and gets `PR_SET_PDEATHSIG = SIGKILL` (so it dies
//! with the agent even on kill -9). That signal fires when the *thread* that forked the child
//! exits: the agent runs on a current_thread runtime, so every fork happens on the main thread,
//! which lives as long as the agent.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{mpsc, oneshot};

use crate::config::{Backoff, RestartPolicy};
use crate::logs::{LineSplitter, Ring, RING_LINES};
use crate::model::{now_ms, Kind, LogLine, ProcessState, RunState, Stream};
use crate::output::{self, LineWriter};
use crate::procfs::{groups_usage, CpuMeter, GroupUsage};

/// How long a stopped process has between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long a process group is waited for after its SIGKILL (a process in uninterruptible sleep
/// dies only when it wakes up).
pub const KILL_WAIT: Duration = Duration::from_secs(5);

/// Where a process's changes and output go (the agent: KV, registry, `proc.logs.<name>`).
pub trait Events: Send + Sync + 'static {
    fn changed(&self, name: &str);
    fn log(&self, name: &str, line: &LogLine);
}

/// What to run, from the config file or made by the agent for a leaf node.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub kind: Kind,
    /// As the config writes it (shown in the state).
    pub command: String,
    /// What is executed: `command` with a relative path resolved against the config's folder.
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: PathBuf,
    pub restart: RestartPolicy,
    pub backoff: Backoff,
    pub tags: Vec<String>,
    pub control: bool,
    /// Output is also appended here (leaf nodes keep a log in their folder).
    pub log_file: Option<PathBuf>,
    /// Output also goes to the agent's stderr, prefixed `[name]`.
    pub echo: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    Start,
    Stop,
    Restart,
    /// SIGKILL to the whole group at once, no grace; then stopped, as after a stop (no restart,
    /// whatever the policy: who kills a process by request wants it down).
    Kill,
    /// Stop, and end the process's task.
    Shutdown,
}

/// Commands that may wait behind the one in progress; more are refused ([`CommandError::Busy`]).
pub const COMMAND_QUEUE: usize = 1;

/// Why a command did not do what it was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// Refused: another is in progress and [`COMMAND_QUEUE`] more wait behind it.
    Busy,
    /// A start (or the start of a restart) could not spawn the process: why, in words. The state
    /// says what follows (exited, or backoff before the next try).
    Spawn(String),
}

/// How a command ended: `Err` says why the spawn failed.
type Outcome = Result<(), String>;

/// What everyone waiting for a command hears: the state as the command left it (taken then, not
/// when the waiter runs, by which time a command queued behind may have changed it).
type Answer = Result<ProcessState, String>;

/// Who waits for which command: one entry per command queued or in progress, so that asking again
/// for the same one joins it instead of running it once more.
#[derive(Default)]
struct Queue {
    /// Each command in progress or queued, in order, with who waits for it.
    waiting: VecDeque<(Command, Vec<oneshot::Sender<Answer>>)>,
    /// The task has ended: nothing will be carried out any more.
    closed: bool,
}

pub struct Managed {
    pub spec: Spec,
    state: Mutex<ProcessState>,
    logs: Mutex<Ring<LogLine>>,
    cpu: Mutex<CpuMeter>,
    commands: mpsc::Sender<Command>,
    queue: Mutex<Queue>,
    events: Arc<dyn Events>,
    /// Appends output to `spec.log_file`, off the runtime's thread.
    log_file: Option<LineWriter>,
    /// What the last run left in its group when it exited by itself, until that group is gone
    /// or killed. Kept here, not in the task, so that [`Managed::kill_now`] reaches it while the
    /// task waits out its grace.
    leftover: Mutex<Option<Leftover>>,
}

struct Running {
    child: tokio::process::Child,
    pid: u32,
    since: Instant,
}

impl Managed {
    /// Creates the process's task (on the current runtime) and starts it if `autostart`.
    pub fn launch(
        spec: Spec,
        autostart: bool,
        host: &str,
        agent: &str,
        events: Arc<dyn Events>,
    ) -> Arc<Managed> {
        let state = ProcessState {
            name: spec.name.clone(),
            kind: spec.kind,
            state: RunState::Stopped,
            pid: None,
            started_at: None,
            restarts: 0,
            exit_code: None,
            signal: None,
            cpu_percent: 0.0,
            rss_bytes: 0,
            restart: spec.restart,
            next_restart_at: None,
            command: spec.command.clone(),
            args: spec.args.clone(),
            controllable: spec.control,
            updated_at: now_ms(),
            host: host.to_owned(),
            agent: agent.to_owned(),
            leaf: None,
        };
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let managed = Arc::new(Managed {
            state: Mutex::new(state),
            logs: Mutex::new(Ring::new(RING_LINES)),
            cpu: Mutex::new(CpuMeter::default()),
            commands: tx,
            queue: Mutex::new(Queue::default()),
            events,
            leftover: Mutex::new(None),
            log_file: spec.log_file.clone().map(|path| {
                LineWriter::spawn(move || {
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                })
            }),
            spec,
        });
        tokio::spawn(run(managed.clone(), rx, autostart));
        managed
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn snapshot(&self) -> ProcessState {
        self.state.lock().expect("state lock").clone()
    }

    /// Changes the state (stamping `updated_at`) and reports the change.
    pub fn update(&self, f: impl FnOnce(&mut ProcessState)) {
        {
            let mut s = self.state.lock().expect("state lock");
            s.updated_at = now_ms();
            f(&mut s);
        }
        self.events.changed(&self.spec.name);
    }

    /// The newest `n` lines, oldest first.
    pub fn logs(&self, n: usize) -> Vec<LogLine> {
        self.logs.lock().expect("logs lock").last(n)
    }

    /// Carries out `command` and returns the state after it (a start answers once the process is
    /// spawned, a stop or a kill once it has exited). The same command already queued or in
    /// progress is joined, not repeated. [`CommandError::Busy`] when [`COMMAND_QUEUE`] others
    /// already wait; never for [`Command::Shutdown`], which waits for its turn.
    pub async fn command(&self, command: Command) -> Result<ProcessState, CommandError> {
        let (ack, done) = oneshot::channel();
        let must_send = {
            let mut q = self.queue.lock().expect("queue lock");
            if q.closed {
                return Ok(self.snapshot());
            }
            // Joined only if it is the newest: a stop in progress with a start queued behind it
            // would answer a later stop "stopped" and then be undone by the start.
            if let Some((_, waiters)) = q.waiting.back_mut().filter(|(c, _)| *c == command) {
                waiters.push(ack);
                false
            } else {
                if command != Command::Shutdown {
                    match self.commands.try_send(command) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => return Err(CommandError::Busy),
                        Err(mpsc::error::TrySendError::Closed(_)) => return Ok(self.snapshot()),
                    }
                }
                // Queued under the lock: the task cannot finish it before it is registered.
                q.waiting.push_back((command, vec![ack]));
                command == Command::Shutdown
            }
        };
        if must_send && self.commands.send(command).await.is_err() {
            let mut q = self.queue.lock().expect("queue lock");
            if let Some(at) = q.waiting.iter().rposition(|(c, _)| *c == command) {
                q.waiting.remove(at);
            }
        }
        match done.await {
            Ok(Ok(state)) => Ok(state),
            Ok(Err(why)) => Err(CommandError::Spawn(why)),
            // Dropped unanswered: the task ended, and the state it left is the answer.
            Err(_) => Ok(self.snapshot()),
        }
    }

    /// Answers everyone waiting for `command` (it is done).
    fn done(&self, command: Command, outcome: Outcome) {
        let waiters = {
            let mut q = self.queue.lock().expect("queue lock");
            let at = q.waiting.iter().position(|(c, _)| *c == command);
            at.and_then(|at| q.waiting.remove(at)).map(|(_, w)| w)
        };
        let answer = outcome.map(|()| self.snapshot());
        for ack in waiters.into_iter().flatten() {
            let _ = ack.send(answer.clone());
        }
    }

    /// The running process's group (it leads it), if it runs.
    pub fn pgid(&self) -> Option<u32> {
        self.state.lock().expect("state lock").pid
    }

    /// SIGKILL, at once, to the running process's group and to what an earlier run left in its
    /// own (a second Ctrl-C: the user will not wait for any grace). Nothing is waited for.
    pub fn kill_now(&self) {
        let leftover = self.leftover().map(|l| l.pgid);
        for pgid in self.pgid().into_iter().chain(leftover) {
            signal_group(pgid, libc::SIGKILL);
        }
    }

    fn leftover(&self) -> Option<Leftover> {
        *self.leftover.lock().expect("leftover lock")
    }

    fn set_leftover(&self, leftover: Option<Leftover>) {
        *self.leftover.lock().expect("leftover lock") = leftover;
    }

    /// Takes the CPU and RSS of the running process's group from `usage` (one scan of `/proc`
    /// for every process, [`crate::procfs::groups_usage`]) into the state, without reporting a
    /// change: the caller writes every state on its tick anyway.
    pub fn sample(&self, usage: &HashMap<u32, GroupUsage>) {
        let Some(pid) = self.pgid() else {
            return;
        };
        let u = usage.get(&pid).copied().unwrap_or_default();
        let cpu = self
            .cpu
            .lock()
            .expect("cpu lock")
            .sample(u.cpu_ticks, Instant::now());
        let mut s = self.state.lock().expect("state lock");
        // Still the same child (it may have been restarted meanwhile).
        if s.pid == Some(pid) {
            s.cpu_percent = cpu;
            s.rss_bytes = u.rss_bytes;
            s.updated_at = now_ms();
        }
    }

    fn record(&self, stream: Stream, line: String) {
        let line = LogLine {
            ts: now_ms(),
            stream,
            line,
        };
        if let Some(f) = &self.log_file {
            f.line(&line.line);
        }
        if self.spec.echo {
            output::stderr().line(&format!("[{}] {}", self.spec.name, line.line));
        }
        self.events.log(&self.spec.name, &line);
        self.logs.lock().expect("logs lock").push(line);
    }

    fn spawn(self: &Arc<Self>) -> Result<Running, String> {
        let mut cmd = tokio::process::Command::new(&self.spec.program);
        cmd.args(&self.spec.args)
            .envs(&self.spec.env)
            .current_dir(&self.spec.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(false)
            .process_group(0);
        // The run's mark (see `leftovers`), whatever the process's own env says.
        if let Some(run) = std::env::var_os(crate::leftovers::MARK) {
            cmd.env(crate::leftovers::MARK, run);
        }
        let agent_pid = std::process::id();
        // SAFETY: the closure runs between fork and exec and calls only async-signal-safe
        // functions (prctl, getppid).
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                // The agent may have died before the prctl: then nobody would ever signal us.
                if libc::getppid() as u32 != agent_pid {
                    return Err(std::io::Error::other("the agent is gone"));
                }
                Ok(())
            });
        }
        // A missing working folder fails the spawn with the same "not found" as a missing
        // program: said as what it is.
        if !self.spec.cwd.is_dir() {
            return Err(format!(
                "cannot start {:?}: its working folder {} is not there (cwd in via-agent.toml)",
                self.spec.command,
                self.spec.cwd.display()
            ));
        }
        let mut child = cmd.spawn().map_err(|e| {
            let hint = match e.kind() {
                std::io::ErrorKind::NotFound => {
                    " (not there: is it built, or on PATH? A script's #! interpreter must be too)"
                }
                _ => "",
            };
            format!("cannot start {:?}: {e}{hint}", self.spec.command)
        })?;
        let pid = child.id().ok_or("the child exited at once")?;
        if let Some(out) = child.stdout.take() {
            tokio::spawn(pump(out, Stream::Stdout, self.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(pump(err, Stream::Stderr, self.clone()));
        }
        *self.cpu.lock().expect("cpu lock") = CpuMeter::default();
        Ok(Running {
            child,
            pid,
            since: Instant::now(),
        })
    }
}

async fn pump(mut reader: impl AsyncRead + Unpin, stream: Stream, managed: Arc<Managed>) {
    let mut splitter = LineSplitter::default();
    let mut buf = vec![0u8; 8192];
    let mut lines = Vec::new();
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => splitter.push(&buf[..n], &mut lines),
        }
        for line in lines.drain(..) {
            managed.record(stream, line);
        }
    }
    if let Some(line) = splitter.finish() {
        managed.record(stream, line);
    }
}

fn signal_group(pgid: u32, signal: libc::c_int) -> bool {
    // SAFETY: killpg has no memory-safety preconditions.
    unsafe { libc::killpg(pgid as libc::pid_t, signal) == 0 }
}

/// Whether group `pgid` has a member that is not a zombie (`killpg(pgid, 0)` also counts zombies,
/// which an init that does not reap leaves there for good).
async fn group_alive(pgid: u32) -> bool {
    if !signal_group(pgid, 0) {
        return false;
    }
    tokio::task::spawn_blocking(move || {
        groups_usage(&[pgid]).get(&pgid).is_some_and(|g| g.live > 0)
    })
    .await
    .unwrap_or(true)
}

/// What a process that exited by itself left in its group: sent SIGTERM at the exit, SIGKILLed at
/// `kill_at`, or before when the process is stopped or started again.
#[derive(Clone, Copy)]
struct Leftover {
    pgid: u32,
    kill_at: tokio::time::Instant,
}

/// Gives group `pgid` (already sent SIGTERM) until `kill_at` to end, SIGKILLs what is left and
/// waits, at most [`KILL_WAIT`], for it to go.
async fn end_group(m: &Managed, pgid: u32, kill_at: tokio::time::Instant) {
    while tokio::time::Instant::now() < kill_at && group_alive(pgid).await {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    signal_group(pgid, libc::SIGKILL);
    let give_up = tokio::time::Instant::now() + KILL_WAIT;
    while group_alive(pgid).await {
        if tokio::time::Instant::now() >= give_up {
            m.record(
                Stream::Stderr,
                format!(
                    "via-agent: process group {pgid} is still there {} s after SIGKILL \
                     (uninterruptible sleep?); going on without waiting for it",
                    KILL_WAIT.as_secs()
                ),
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Ends what the last run left in its group, if anything (before a stop or a new start), by
/// `kill_at` or, with `now`, at once. The leftover stays known to [`Managed::kill_now`] until
/// its group is gone.
async fn end_leftover(m: &Managed, now: bool) {
    if let Some(l) = m.leftover() {
        let kill_at = match now {
            true => tokio::time::Instant::now(),
            false => l.kill_at,
        };
        end_group(m, l.pgid, kill_at).await;
        m.set_leftover(None);
    }
}

/// SIGKILL to the whole group at once, then waits for the leader (at most [`KILL_WAIT`]) and for
/// the rest of the group (as long again). `None`: its status is unknown, as for [`stop`].
async fn kill(m: &Managed, running: &mut Running) -> Option<ExitStatus> {
    let now = tokio::time::Instant::now();
    signal_group(running.pid, libc::SIGKILL);
    let status = reap(m, running).await;
    end_group(m, running.pid, now).await;
    status
}

/// Waits at most [`KILL_WAIT`] for a process already sent SIGKILL.
async fn reap(m: &Managed, running: &mut Running) -> Option<ExitStatus> {
    let pid = running.pid;
    match tokio::time::timeout(KILL_WAIT, running.child.wait()).await {
        Ok(Ok(status)) => Some(status),
        Ok(Err(e)) => {
            m.record(
                Stream::Stderr,
                format!("via-agent: cannot wait for pid {pid}: {e}"),
            );
            None
        }
        // In uninterruptible sleep (D): it dies when it wakes; neither stop nor kill waits for that.
        Err(_) => {
            m.record(
                Stream::Stderr,
                format!(
                    "via-agent: pid {pid} has not exited {} s after SIGKILL \
                     (uninterruptible sleep?); going on without waiting for it",
                    KILL_WAIT.as_secs()
                ),
            );
            None
        }
    }
}

/// SIGTERM to the group, SIGKILL to whatever of it is left after [`STOP_GRACE`].
/// `None`: its status is unknown (it could not be waited for, or had not exited [`KILL_WAIT`]
/// after its SIGKILL; tokio reaps it whenever it does).
async fn stop(m: &Managed, running: &mut Running) -> Option<ExitStatus> {
    let deadline = tokio::time::Instant::now() + STOP_GRACE;
    signal_group(running.pid, libc::SIGTERM);
    let status = match tokio::time::timeout_at(deadline, running.child.wait()).await {
        Ok(Ok(status)) => Some(status),
        _ => None,
    };
    // The leader is gone (or late): give the rest of its group the same grace, then kill.
    end_group(m, running.pid, deadline).await;
    if status.is_some() {
        return status;
    }
    reap(m, running).await
}

async fn wait(running: &mut Option<Running>) -> std::io::Result<ExitStatus> {
    match running {
        Some(r) => r.child.wait().await,
        None => std::future::pending().await,
    }
}

/// The command put off by a restart's wait, else the next one to come.
async fn next_command(
    deferred: &mut Option<Command>,
    commands: &mut mpsc::Receiver<Command>,
) -> Option<Command> {
    match deferred.take() {
        Some(command) => Some(command),
        None => commands.recv().await,
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The process's task: owns the child, the only place that spawns or reaps it.
async fn run(m: Arc<Managed>, mut commands: mpsc::Receiver<Command>, autostart: bool) {
    let mut running: Option<Running> = None;
    let mut retry_at: Option<tokio::time::Instant> = None;
    // Quick failures in a row: the index into the backoff schedule.
    let mut failures = 0u32;
    // A command that came while a restart waited for the last run's group: carried out next.
    let mut deferred: Option<Command> = None;

    // Starts the process; a failure to spawn counts as a failed run, and is said to the requester.
    let start = |m: &Arc<Managed>,
                 running: &mut Option<Running>,
                 retry_at: &mut Option<tokio::time::Instant>,
                 failures: &mut u32,
                 restart: bool|
     -> Outcome {
        *retry_at = None;
        match m.spawn() {
            Ok(r) => {
                let pid = r.pid;
                *running = Some(r);
                m.update(|s| {
                    s.state = RunState::Running;
                    s.pid = Some(pid);
                    s.started_at = Some(now_ms());
                    s.next_restart_at = None;
                    s.exit_code = None;
                    s.signal = None;
                    s.cpu_percent = 0.0;
                    s.rss_bytes = 0;
                    if restart {
                        s.restarts += 1;
                    }
                });
                Ok(())
            }
            Err(e) => {
                m.record(Stream::Stderr, format!("via-agent: {e}"));
                m.update(|s| {
                    s.exit_code = None;
                    s.signal = None;
                    if restart {
                        s.restarts += 1;
                    }
                });
                after_exit(m, None, Duration::ZERO, retry_at, failures);
                Err(e)
            }
        }
    };

    if autostart {
        // Said in its log and its state; nobody asked.
        let _ = start(&m, &mut running, &mut retry_at, &mut failures, false);
    }
    loop {
        tokio::select! {
            waited = wait(&mut running) => {
                let r = running.take().expect("a running child exited");
                // Not waitable: an exit of unknown status, which counts as a failure.
                let status = match waited {
                    Ok(status) => Some(status),
                    Err(e) => {
                        m.record(Stream::Stderr, format!("via-agent: cannot wait for pid {}: {e}", r.pid));
                        None
                    }
                };
                // Whatever it left in its group goes with it: SIGTERM now, SIGKILL after the grace.
                if signal_group(r.pid, libc::SIGTERM) {
                    m.set_leftover(Some(Leftover {
                        pgid: r.pid,
                        kill_at: tokio::time::Instant::now() + STOP_GRACE,
                    }));
                }
                after_exit(&m, status, r.since.elapsed(), &mut retry_at, &mut failures);
            }
            _ = sleep_until(m.leftover().map(|l| l.kill_at)) => {
                if let Some(l) = m.leftover() {
                    signal_group(l.pgid, libc::SIGKILL);
                    m.set_leftover(None);
                }
            }
            _ = sleep_until(retry_at) => {
                // Not beside what the last run left (it may hold the port the process needs),
                // which may take until its grace ends; a command meanwhile (a stop, a kill, the
                // agent's shutdown) is not held back behind that wait, and decides instead.
                if m.leftover().is_some() {
                    // Up to STOP_GRACE until the last run's group is gone: say so.
                    m.update(|s| s.state = RunState::Starting);
                }
                let clear = end_leftover(&m, false);
                tokio::pin!(clear);
                tokio::select! {
                    () = &mut clear => {
                        let _ = start(&m, &mut running, &mut retry_at, &mut failures, true);
                    }
                    command = commands.recv() => {
                        retry_at = None;
                        deferred = command;
                    }
                }
            }
            command = next_command(&mut deferred, &mut commands) => {
                // The sender lives in `m`, which this task holds: the channel never closes.
                let Some(command) = command else { break };
                let mut outcome = Ok(());
                match command {
                    Command::Start => {
                        if running.is_none() {
                            if m.leftover().is_some() {
                                // Up to STOP_GRACE until the last run's group is gone: say so.
                                m.update(|s| s.state = RunState::Starting);
                            }
                            end_leftover(&m, false).await;
                            failures = 0;
                            outcome = start(&m, &mut running, &mut retry_at, &mut failures, false);
                        }
                    }
                    Command::Stop | Command::Shutdown | Command::Restart | Command::Kill => {
                        let killing = command == Command::Kill;
                        retry_at = None;
                        // A kill ends what an earlier run left at once too, without its grace.
                        end_leftover(&m, killing).await;
                        // Taken here, so its exit is never seen as one of its own (a failure to
                        // restart): a stopped or killed process stays down whatever its policy.
                        if let Some(mut r) = running.take() {
                            m.update(|s| s.state = RunState::Stopping);
                            let status = if killing {
                                kill(&m, &mut r).await
                            } else {
                                stop(&m, &mut r).await
                            };
                            m.update(|s| {
                                s.exit_code = status.and_then(|st| st.code());
                                s.signal = status.and_then(|st| st.signal());
                            });
                        }
                        m.update(|s| {
                            s.state = RunState::Stopped;
                            s.pid = None;
                            s.next_restart_at = None;
                            s.cpu_percent = 0.0;
                            s.rss_bytes = 0;
                        });
                        if command == Command::Restart {
                            failures = 0;
                            outcome = start(&m, &mut running, &mut retry_at, &mut failures, true);
                        }
                    }
                }
                m.done(command, outcome);
                if command == Command::Shutdown {
                    break;
                }
            }
        }
    }
    // Commands still queued are not carried out: their callers get the final state.
    let mut q = m.queue.lock().expect("queue lock");
    q.closed = true;
    q.waiting.clear();
}

/// Records an exit (`None`: it could not be spawned, or its status is unknown — a failure) and
/// schedules the restart its policy asks for.
fn after_exit(
    m: &Managed,
    status: Option<ExitStatus>,
    uptime: Duration,
    retry_at: &mut Option<tokio::time::Instant>,
    failures: &mut u32,
) {
    let success = status.is_some_and(|s| s.success());
    let backoff = m.spec.backoff;
    if uptime >= backoff.reset_after {
        *failures = 0;
    }
    let restart = match m.spec.restart {
        RestartPolicy::Never => false,
        RestartPolicy::OnFailure => !success,
        RestartPolicy::Always => true,
    };
    let delay = backoff.delay(*failures);
    if restart {
        *failures = failures.saturating_add(1);
        *retry_at = Some(tokio::time::Instant::now() + delay);
    }
    m.update(|s| {
        if let Some(status) = status {
            s.exit_code = status.code();
            s.signal = status.signal();
        }
        s.pid = None;
        s.cpu_percent = 0.0;
        s.rss_bytes = 0;
        if restart {
            s.state = RunState::Backoff;
            s.next_restart_at = Some(s.updated_at + delay.as_millis() as u64);
        } else {
            s.state = RunState::Exited;
            s.next_restart_at = None;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex as StdMutex;

    #[derive(Default)]
    struct Recorder {
        lines: StdMutex<Vec<String>>,
    }

    impl Events for Recorder {
        fn changed(&self, _: &str) {}
        fn log(&self, _: &str, line: &LogLine) {
            self.lines.lock().unwrap().push(line.line.clone());
        }
    }

    /// Starts `spec` at once (host "h", agent "a"), its events recorded.
    fn launch(spec: Spec) -> (Arc<Managed>, Arc<Recorder>) {
        let events = Arc::new(Recorder::default());
        let m = Managed::launch(spec, true, "h", "a", events.clone());
        (m, events)
    }

    fn spec(name: &str, command: &str, args: &[&str], restart: RestartPolicy) -> Spec {
        Spec {
            name: name.into(),
            kind: Kind::Process,
            command: command.into(),
            program: command.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: [("GREETING".to_owned(), "hi".to_owned())].into(),
            cwd: std::env::temp_dir(),
            restart,
            backoff: Backoff {
                initial: Duration::from_millis(100),
                max: Duration::from_millis(400),
                reset_after: Duration::from_secs(10),
            },
            tags: vec![],
            control: true,
            log_file: None,
            echo: false,
        }
    }

    async fn until(what: &str, mut f: impl FnMut() -> bool) {
        for _ in 0..1500 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting for {what}");
    }

    fn alive(pid: u32) -> bool {
        // Not a zombie: the group's other members are reaped by init once orphaned.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z"))
            .unwrap_or(false)
    }

    #[tokio::test]
    async fn stop_takes_the_whole_group() {
        let (m, events) = launch(spec(
            "s",
            "sh",
            &["-c", "sleep 30 & echo $!; wait"],
            RestartPolicy::Never,
        ));
        until("the start", || m.snapshot().pid.is_some()).await;
        let pid = m.snapshot().pid.unwrap();
        until("the grandchild's pid", || {
            !events.lines.lock().unwrap().is_empty()
        })
        .await;
        let grandchild: u32 = events.lines.lock().unwrap()[0].parse().unwrap();
        assert!(alive(grandchild));
        let state = m.command(Command::Stop).await.unwrap();
        assert_eq!(state.state, RunState::Stopped);
        assert_eq!(state.signal, Some(libc::SIGTERM));
        assert!(!alive(pid));
        until("the grandchild to go", || !alive(grandchild)).await;
    }

    /// Exits at once with 1, leaving in its group a `sleep` that ignores SIGTERM (its pid printed).
    const LEAVES_A_STUBBORN_SLEEP: &str = "trap '' TERM; sleep 30 & echo $!; exit 1";

    fn printed_pids(events: &Recorder) -> Vec<u32> {
        let lines = events.lines.lock().unwrap();
        lines.iter().filter_map(|l| l.parse().ok()).collect()
    }

    #[tokio::test]
    async fn what_an_exited_process_left_is_killed_after_the_grace() {
        let (m, events) = launch(spec(
            "x",
            "sh",
            &["-c", LEAVES_A_STUBBORN_SLEEP],
            RestartPolicy::Never,
        ));
        until("the exit", || m.snapshot().state == RunState::Exited).await;
        let sleep = printed_pids(&events)[0];
        assert!(alive(sleep));
        let exited = Instant::now();
        until("the leftover to be killed", || !alive(sleep)).await;
        assert!(exited.elapsed() >= STOP_GRACE - Duration::from_millis(500));
        m.command(Command::Shutdown).await.unwrap();
    }

    #[tokio::test]
    async fn shutdown_ends_what_an_exited_process_left() {
        let (m, events) = launch(spec(
            "x",
            "sh",
            &["-c", LEAVES_A_STUBBORN_SLEEP],
            RestartPolicy::Never,
        ));
        until("the exit", || m.snapshot().state == RunState::Exited).await;
        let sleep = printed_pids(&events)[0];
        assert!(alive(sleep));
        let state = m.command(Command::Shutdown).await.unwrap();
        assert_eq!(state.state, RunState::Stopped);
        assert!(
            !alive(sleep),
            "the exited process's group outlived its shutdown"
        );
    }

    #[tokio::test]
    async fn a_respawn_waits_until_the_last_runs_group_is_gone() {
        let (m, events) = launch(spec(
            "x",
            "sh",
            &["-c", LEAVES_A_STUBBORN_SLEEP],
            RestartPolicy::OnFailure,
        ));
        until("the second run", || printed_pids(&events).len() >= 2).await;
        let first = printed_pids(&events)[0];
        assert!(!alive(first), "respawned beside the last run's leftover");
        m.command(Command::Shutdown).await.unwrap();
        for pid in printed_pids(&events) {
            assert!(!alive(pid));
        }
    }

    /// Takes the whole grace (5 s) to stop: its group ignores SIGTERM. It says "trapped" once
    /// it does; a SIGTERM before that ends it at once.
    const IGNORES_SIGTERM: &str = "trap '' TERM; echo trapped; sleep 30";

    async fn until_trapped(events: &Recorder) {
        until("the trap to be set", || {
            events.lines.lock().unwrap().iter().any(|l| l == "trapped")
        })
        .await;
    }

    #[tokio::test]
    async fn the_same_command_asked_again_joins_the_one_in_progress() {
        let (m, events) = launch(spec(
            "x",
            "sh",
            &["-c", IGNORES_SIGTERM],
            RestartPolicy::Never,
        ));
        until_trapped(&events).await;
        let t = Instant::now();
        let (a, b, c) = tokio::join!(
            m.command(Command::Restart),
            m.command(Command::Restart),
            m.command(Command::Restart)
        );
        let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
        assert_eq!((a.restarts, b.restarts, c.restarts), (1, 1, 1));
        assert!(a.pid.is_some() && a.pid == b.pid && b.pid == c.pid);
        assert!(t.elapsed() < STOP_GRACE * 2, "{:?}", t.elapsed());
        m.command(Command::Shutdown).await.unwrap();
    }

    #[tokio::test]
    async fn a_missing_working_folder_is_said_as_such() {
        let mut spec = spec("cwd", "sh", &["-c", "true"], RestartPolicy::Never);
        spec.cwd = std::env::temp_dir().join("via-agent-no-such-folder");
        let (m, _events) = launch(spec);
        let err = m.command(Command::Start).await.unwrap_err();
        let CommandError::Spawn(why) = err else {
            panic!("{err:?}");
        };
        assert!(
            why.contains("via-agent-no-such-folder is not there"),
            "{why}"
        );
        assert!(!why.contains("is it built"), "{why}");
        m.command(Command::Shutdown).await.unwrap();
    }

    /// A request joins the same command only if it is the newest one: a stop in progress with a
    /// start queued behind it is not joined by a later stop (its answer, "stopped", would be undone
    /// by the start); that stop is refused as any third command is. Before, it was joined.
    #[tokio::test]
    async fn a_request_joins_only_the_newest_command() {
        let (m, events) = launch(spec(
            "j",
            "sh",
            &["-c", IGNORES_SIGTERM],
            RestartPolicy::Never,
        ));
        until_trapped(&events).await;
        let stop = tokio::spawn({
            let m = m.clone();
            async move { m.command(Command::Stop).await }
        });
        until("the stop in progress", || {
            m.snapshot().state == RunState::Stopping
        })
        .await;
        let start = tokio::spawn({
            let m = m.clone();
            async move { m.command(Command::Start).await }
        });
        until("the start queued behind it", || {
            m.queue.lock().unwrap().waiting.len() == 2
        })
        .await;
        assert_eq!(m.command(Command::Stop).await, Err(CommandError::Busy));
        assert_eq!(stop.await.unwrap().unwrap().state, RunState::Stopped);
        assert_eq!(start.await.unwrap().unwrap().state, RunState::Running);
        m.command(Command::Shutdown).await.unwrap();
    }

    #[tokio::test]
    async fn one_command_waits_behind_the_one_in_progress_and_more_are_refused() {
        let (m, events) = launch(spec(
            "x",
            "sh",
            &["-c", IGNORES_SIGTERM],
            RestartPolicy::Never,
        ));
        until_trapped(&events).await;
        let restart = tokio::spawn({
            let m = m.clone();
            async move { m.command(Command::Restart).await }
        });
        until("the restart to begin", || {
            m.snapshot().state == RunState::Stopping
        })
        .await;
        let stop = tokio::spawn({
            let m = m.clone();
            async move { m.command(Command::Stop).await }
        });
        until("the stop to be queued", || {
            m.queue
                .lock()
                .unwrap()
                .waiting
                .iter()
                .any(|(c, _)| *c == Command::Stop)
        })
        .await;
        assert_eq!(m.command(Command::Start).await, Err(CommandError::Busy));
        assert_eq!(restart.await.unwrap().unwrap().restarts, 1);
        assert_eq!(stop.await.unwrap().unwrap().state, RunState::Stopped);
        // Shutdown is never refused: it waits its turn.
        m.command(Command::Shutdown).await.unwrap();
    }

    #[tokio::test]
    async fn an_exit_that_cannot_be_waited_for_is_a_failure() {
        let (m, events) = launch(spec(
            "w",
            "sh",
            // Long enough that the task cannot reap it first even on a loaded machine.
            &["-c", "sleep 1"],
            RestartPolicy::OnFailure,
        ));
        until("the start", || m.snapshot().pid.is_some()).await;
        let pid = m.snapshot().pid.unwrap();
        // Reaped behind the task's back (this blocks the test's only thread, so the task cannot
        // be first): its wait then fails.
        // SAFETY: waitpid on our own child, with a null status pointer.
        let reaped = unsafe { libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0) };
        assert_eq!(reaped, pid as libc::pid_t);
        until("the restart's backoff", || {
            m.snapshot().state == RunState::Backoff
        })
        .await;
        assert!(events.lines.lock().unwrap()[0].contains("cannot wait"));
        m.command(Command::Shutdown).await.unwrap();
    }

    #[tokio::test]
    async fn a_crash_is_restarted_with_growing_delays() {
        let (m, _events) = launch(spec(
            "c",
            "sh",
            &["-c", "echo $GREETING; exit 3"],
            RestartPolicy::OnFailure,
        ));
        // The waits announced in `next_restart_at`, by restarts so far: 100, 200, 400, 400 ms.
        // (A backoff missed between two looks, on a loaded machine, is left out.)
        let mut delays = std::collections::BTreeMap::new();
        until("four backoffs", || {
            let s = m.snapshot();
            if let (RunState::Backoff, Some(at)) = (s.state, s.next_restart_at) {
                assert_eq!(s.exit_code, Some(3));
                delays.insert(s.restarts, at - s.updated_at);
            }
            delays.len() == 4
        })
        .await;
        for (restarts, delay) in delays {
            assert_eq!(
                delay,
                100u64 << restarts.min(2),
                "after {restarts} restarts"
            );
        }
        assert!(m.logs(10).iter().all(|l| l.line == "hi"));
        let state = m.command(Command::Stop).await.unwrap();
        assert_eq!(state.state, RunState::Stopped);
        assert_eq!(state.next_restart_at, None);
    }

    /// A stop sent while a restart waits for what the last run left in its group (a member that
    /// ignores SIGTERM keeps it there until the grace ends) keeps the process down. Before, the
    /// wait held the stop back, the process was started again anyway (`restarts` 1), and only
    /// then stopped.
    #[tokio::test]
    async fn a_stop_during_a_restarts_wait_for_the_last_group_keeps_it_down() {
        let (m, events) = launch(spec(
            "r",
            "sh",
            &["-c", LEAVES_A_STUBBORN_SLEEP],
            RestartPolicy::OnFailure,
        ));
        until("the grandchild's pid", || !printed_pids(&events).is_empty()).await;
        let grandchild = printed_pids(&events)[0];
        until("the restart's backoff", || {
            m.snapshot().state == RunState::Backoff
        })
        .await;
        // Due 100 ms after the exit; from then on the restart waits for the stubborn sleep.
        let due = m.snapshot().next_restart_at.expect("a restart due");
        until("the restart due", || now_ms() > due + 200).await;
        assert!(
            alive(grandchild),
            "the grace is over: this test shows nothing"
        );
        let state = m.command(Command::Stop).await.unwrap();
        assert_eq!(state.state, RunState::Stopped);
        assert_eq!(state.restarts, 0, "started again before the stop");
        assert!(!alive(grandchild));
        // Still down after more than a backoff.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let later = m.snapshot();
        assert_eq!((later.state, later.restarts), (RunState::Stopped, 0));
        m.command(Command::Shutdown).await.unwrap();
    }

    #[tokio::test]
    async fn kill_takes_the_whole_group_at_once_and_it_stays_down() {
        // Leader and grandchild ignore SIGTERM: a stop would take its whole grace.
        let (m, events) = launch(spec(
            "k",
            "sh",
            &["-c", "trap '' TERM; sleep 30 & echo $!; wait"],
            RestartPolicy::Always,
        ));
        until("the grandchild's pid", || !printed_pids(&events).is_empty()).await;
        let pid = m.snapshot().pid.unwrap();
        let grandchild = printed_pids(&events)[0];
        let t = Instant::now();
        let state = m.command(Command::Kill).await.unwrap();
        assert!(t.elapsed() < STOP_GRACE / 2, "{:?}", t.elapsed());
        assert_eq!(state.state, RunState::Stopped);
        assert_eq!((state.signal, state.exit_code), (Some(libc::SIGKILL), None));
        assert_eq!((state.pid, state.next_restart_at), (None, None));
        assert!(!alive(pid));
        assert!(!alive(grandchild), "the kill left the group's other member");
        // Not restarted (policy "always"): still down after more than its first backoff.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let later = m.snapshot();
        assert_eq!((later.state, later.restarts), (RunState::Stopped, 0));
        // A killed (stopped) process killed again: its state, unchanged.
        assert_eq!(m.command(Command::Kill).await.unwrap().signal, Some(9));
        m.command(Command::Shutdown).await.unwrap();
    }

    #[tokio::test]
    async fn a_kill_ends_what_an_exited_process_left_without_the_grace() {
        let (m, events) = launch(spec(
            "x",
            "sh",
            &["-c", LEAVES_A_STUBBORN_SLEEP],
            RestartPolicy::Never,
        ));
        until("the exit", || m.snapshot().state == RunState::Exited).await;
        let sleep = printed_pids(&events)[0];
        assert!(alive(sleep));
        let t = Instant::now();
        let state = m.command(Command::Kill).await.unwrap();
        assert!(t.elapsed() < STOP_GRACE / 2, "{:?}", t.elapsed());
        assert_eq!(state.state, RunState::Stopped);
        assert!(!alive(sleep));
        m.command(Command::Shutdown).await.unwrap();
    }

    #[tokio::test]
    async fn a_kill_during_a_start_waits_joins_and_refuses_as_any_command() {
        // The start waits (up to the grace) for what the exited first run left in its group;
        // the second run sleeps.
        let marker = std::env::temp_dir().join(format!(
            "via-agent-second-run-{}-{:?}",
            std::process::id(),
            Instant::now()
        ));
        let script = format!(
            "if [ -e '{0}' ]; then exec sleep 30; fi; touch '{0}'; {LEAVES_A_STUBBORN_SLEEP}",
            marker.display()
        );
        let (m, events) = launch(spec("x", "sh", &["-c", &script], RestartPolicy::Never));
        until("the exit", || m.snapshot().state == RunState::Exited).await;
        let start = tokio::spawn({
            let m = m.clone();
            async move { m.command(Command::Start).await }
        });
        until("the start in progress", || {
            m.snapshot().state == RunState::Starting
        })
        .await;
        let kills: Vec<_> = (0..2)
            .map(|_| {
                tokio::spawn({
                    let m = m.clone();
                    async move { m.command(Command::Kill).await }
                })
            })
            .collect();
        until("both kills waiting as one", || {
            m.queue
                .lock()
                .unwrap()
                .waiting
                .iter()
                .any(|(c, w)| *c == Command::Kill && w.len() == 2)
        })
        .await;
        assert_eq!(m.command(Command::Stop).await, Err(CommandError::Busy));
        let started = start.await.unwrap().unwrap();
        assert_eq!(started.state, RunState::Running, "the state the start left");
        for kill in kills {
            let killed = kill.await.unwrap().unwrap();
            assert_eq!(
                (killed.state, killed.pid, killed.signal),
                (RunState::Stopped, None, Some(libc::SIGKILL))
            );
        }
        assert!(!alive(started.pid.unwrap()));
        for pid in printed_pids(&events) {
            assert!(!alive(pid));
        }
        m.command(Command::Shutdown).await.unwrap();
        let _ = std::fs::remove_file(marker);
    }

    #[tokio::test]
    async fn a_start_that_cannot_spawn_says_why() {
        let events = Arc::new(Recorder::default());
        let m = Managed::launch(
            spec("missing", "./not/built", &[], RestartPolicy::Never),
            false,
            "h",
            "a",
            events,
        );
        let e = m.command(Command::Start).await.unwrap_err();
        let CommandError::Spawn(why) = e else {
            panic!("{e:?}")
        };
        assert!(
            why.contains("./not/built") && why.contains("is it built"),
            "{why}"
        );
        assert_eq!(m.snapshot().state, RunState::Exited);
        // So does a restart, and the task goes on serving.
        assert!(matches!(
            m.command(Command::Restart).await,
            Err(CommandError::Spawn(_))
        ));
        assert_eq!(
            m.command(Command::Stop).await.unwrap().state,
            RunState::Stopped
        );
        m.command(Command::Shutdown).await.unwrap();
    }

    #[tokio::test]
    async fn success_is_not_restarted_on_failure_policy_and_spawn_errors_are_logged() {
        let (m, _events) = launch(spec("ok", "true", &[], RestartPolicy::OnFailure));
        until("exit", || m.snapshot().state == RunState::Exited).await;
        assert_eq!(m.snapshot().exit_code, Some(0));
        let (m, _events) = launch(spec("missing", "/nonexistent/x", &[], RestartPolicy::Never));
        until("the failed start", || {
            m.snapshot().state == RunState::Exited
        })
        .await;
        assert!(m.logs(1)[0].line.contains("cannot start"));
    }
}

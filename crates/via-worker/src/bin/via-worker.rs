//! `via-worker`: one partitioned worker as a process. It holds leases by the rules of
//! `via-workers`, consumes the partitions it holds, and on SIGINT or SIGTERM releases them and
//! leaves (exit 0); killed with -9, its leases expire and move.
//!
//! Stdout: one JSON line per status event and per memory sample. Stderr: what goes wrong, at most
//! one line every few seconds (no flood while the server is away). `--record FILE` appends one
//! JSON line per event processed and per status event, for tests that check what was done.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::signal::unix::{signal, SignalKind};
use via_worker::{alloc, millis, number, text, valid_id, Common};
use via_workers::worker::{self, Observer};
use via_workers::{Event, Identity, MemoryStats, StatusEvent, WorkerError, WorkerKind};

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

const USAGE: &str = "usage: via-worker [--url URL] [--partitions N] [--prefix P] [--stream S] \
[--lease-ttl-ms MS] [--renew-ms MS] [--tick-ms MS] [--margin-ms MS] [--ack-wait-ms MS] \
[--memory-ms MS] [--id ID] [--record FILE] [--max-events N]
  the url defaults to $VIA_NATS_URL, then nats://127.0.0.1:4222 (several: comma-separated); the rest to via-workers' Settings";

/// Trouble lines at most this often; the ones in between are counted and said with the next.
const TROUBLE_EVERY: Duration = Duration::from_secs(5);

struct Args {
    common: Common,
    id: Option<String>,
    record: Option<PathBuf>,
    max_events: Option<u64>,
}

fn parse() -> Result<Option<Args>, lexopt::Error> {
    let mut args = Args {
        common: Common::default(),
        id: None,
        record: None,
        max_events: None,
    };
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        let name = match arg {
            lexopt::Arg::Long("help") | lexopt::Arg::Short('h') => return Ok(None),
            lexopt::Arg::Long(name) => name.to_owned(),
            other => return Err(other.unexpected()),
        };
        if args.common.take(&name, &mut parser)? {
            continue;
        }
        let s = &mut args.common.settings;
        match name.as_str() {
            "lease-ttl-ms" => s.lease_ttl = millis(&mut parser)?,
            "renew-ms" => s.renew_every = millis(&mut parser)?,
            "tick-ms" => s.tick = millis(&mut parser)?,
            "margin-ms" => s.safety_margin = millis(&mut parser)?,
            "ack-wait-ms" => s.ack_wait = millis(&mut parser)?,
            "memory-ms" => s.memory_every = millis(&mut parser)?,
            "id" => args.id = Some(text(&mut parser)?),
            "record" => args.record = Some(text(&mut parser)?.into()),
            "max-events" => args.max_events = Some(number(&mut parser)?),
            _ => return Err(lexopt::Arg::Long(&name).unexpected()),
        }
    }
    Ok(Some(args))
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(Some(args)) => args,
        Ok(None) => {
            say_out(USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => return fail(&format!("{e}\n{USAGE}")),
    };
    if let Err(e) = via_workers::setup::validate(&args.common.settings) {
        return fail(&e.to_string());
    }
    let me = match &args.id {
        Some(id) if !valid_id(id) => {
            return fail("--id must be 1 to 64 letters, digits, '-' or '_'");
        }
        Some(id) => Identity {
            id: id.clone(),
            kind: WorkerKind::Process,
            host: via_worker::hostname(),
            pid: Some(std::process::id()),
        },
        None => Identity::new(
            WorkerKind::Process,
            via_worker::hostname(),
            Some(std::process::id()),
        ),
    };
    let record = match &args.record {
        Some(path) => match File::options().create(true).append(true).open(path) {
            Ok(f) => Some(f),
            Err(e) => return fail(&format!("cannot open {}: {e}", path.display())),
        },
        None => None,
    };
    // One thread: the worker is one task by design, and the client's driver shares it.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    match runtime.block_on(run(args, me, record)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

async fn run(args: Args, me: Identity, record: Option<File>) -> Result<(), String> {
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let enough = Rc::new(tokio::sync::Notify::new());
    let stop = {
        let enough = enough.clone();
        async move {
            tokio::select! {
                _ = sigint.recv() => {}
                _ = sigterm.recv() => {}
                _ = enough.notified() => {}
            }
        }
    };
    // Started, not awaited: the worker waits for the server (run retries its setup).
    let client = nats_ws::start(
        args.common
            .options(&format!("via-worker {}", me.id), "worker")?,
    )
    .map_err(|e| format!("{}: {e}", args.common.url))?;
    let mut observer = Report {
        id: me.id.clone(),
        record,
        line: Vec::with_capacity(256),
        processed: 0,
        max_events: args.max_events,
        enough,
        last_trouble: None,
        quiet: 0,
    };
    let result = worker::run(&client, &args.common.settings, &me, &mut observer, stop).await;
    // The last sample, for whoever compares the end with the warm-up.
    observer.sample();
    client.close();
    let summary = result.map_err(|e| e.to_string())?;
    observer.say_err(&format!(
        "via-worker {}: left after processing {} event(s); leases acquired {}, released {}, lost {}, expired {}",
        me.id, summary.processed, summary.acquired, summary.released, summary.lost, summary.expired
    ));
    Ok(())
}

/// What the worker hears, said on stdout and stderr and recorded.
struct Report {
    id: String,
    /// Written through, one `write` per line: a record of an event must reach the file before
    /// its ack leaves, or a kill -9 right after would look like a lost event.
    record: Option<File>,
    line: Vec<u8>,
    processed: u64,
    max_events: Option<u64>,
    enough: Rc<tokio::sync::Notify>,
    last_trouble: Option<Instant>,
    /// Trouble lines not said since the last one.
    quiet: u64,
}

#[derive(Serialize)]
struct ProcessedLine<'a> {
    p: u32,
    seq: u64,
    id: Option<&'a str>,
    redelivered: bool,
    at: u64,
}

#[derive(Serialize)]
struct StatusLine<'a> {
    status: &'a StatusEvent,
}

impl Report {
    fn record(&mut self, value: &impl Serialize) {
        let Some(file) = self.record.as_mut() else {
            return;
        };
        self.line.clear();
        if serde_json::to_writer(&mut self.line, value).is_err() {
            return;
        }
        self.line.push(b'\n');
        if let Err(e) = file.write_all(&self.line) {
            // A full disk must not stop the worker; the record is for tests, which will notice.
            let _ = writeln!(
                std::io::stderr(),
                "via-worker {}: cannot record: {e}",
                self.id
            );
            self.record = None;
        }
    }

    fn sample(&mut self) {
        let stats = MemoryStats {
            worker: self.id.clone(),
            at: via_workers::now_ms(),
            processed: self.processed,
            ..alloc::stats()
        };
        if let Ok(line) = serde_json::to_string(&serde_json::json!({ "memory": stats })) {
            say_out(&line);
        }
    }

    fn say_err(&self, line: &str) {
        // Not eprintln!: it panics when stderr is closed.
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}

impl Observer for Report {
    fn processed(
        &mut self,
        partition: u32,
        stream_seq: u64,
        event: Option<&Event>,
        redelivered: bool,
        at: u64,
    ) {
        self.processed += 1;
        self.record(&ProcessedLine {
            p: partition,
            seq: stream_seq,
            id: event.map(|e| e.id.as_str()),
            redelivered,
            at,
        });
        if self.max_events == Some(self.processed) {
            self.enough.notify_one();
        }
    }

    fn status(&mut self, event: &StatusEvent) {
        self.record(&StatusLine { status: event });
        if let Ok(line) = serde_json::to_string(&StatusLine { status: event }) {
            say_out(&line);
        }
    }

    fn memory(&mut self) -> MemoryStats {
        self.sample();
        alloc::stats()
    }

    fn trouble(&mut self, what: &str, error: &WorkerError) {
        let now = Instant::now();
        if self
            .last_trouble
            .is_some_and(|at| now.duration_since(at) < TROUBLE_EVERY)
        {
            self.quiet += 1;
            return;
        }
        let more = match self.quiet {
            0 => String::new(),
            n => format!(" ({n} more since the last line)"),
        };
        self.say_err(&format!("via-worker {}: {what}: {error}{more}", self.id));
        self.last_trouble = Some(now);
        self.quiet = 0;
    }
}

fn say_out(line: &str) {
    // Not println!: it panics when stdout is closed (e.g. piped into a finished `head`).
    let _ = writeln!(std::io::stdout(), "{line}");
}

fn fail(message: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "via-worker: {message}");
    ExitCode::FAILURE
}

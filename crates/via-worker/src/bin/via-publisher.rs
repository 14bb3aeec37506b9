//! `via-publisher`: feeds the workers' stream with `--count` events (ids `<run>-<i>`, each to
//! the partition its key hashes to, acknowledged by JetStream), then prints what was published as
//! one JSON line. Exits non-zero with the reason when the server refuses or stays away.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use via_worker::{number, text, Common};
use via_workers::publisher::{self, Plan};

const USAGE: &str = "usage: via-publisher [--url URL] [--partitions N] [--prefix P] [--stream S] \
[--count N] [--rate EVENTS_PER_S] [--run ID] [--window W] [--connect-timeout-ms MS]
  the url defaults to $VIA_NATS_URL, then nats://127.0.0.1:4222 (several: comma-separated); --count 1000, as fast as acked";

/// How long the publisher waits for a server that is not there yet.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

struct Args {
    common: Common,
    plan: Plan,
    connect_timeout: Duration,
}

fn parse() -> Result<Option<Args>, lexopt::Error> {
    let mut args = Args {
        common: Common::default(),
        plan: Plan::new(1000, via_worker::run_id()),
        connect_timeout: CONNECT_TIMEOUT,
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
        match name.as_str() {
            "count" => args.plan.count = number(&mut parser)?,
            "rate" => args.plan.rate = Some(number(&mut parser)?),
            "run" => args.plan.run = text(&mut parser)?,
            "window" => args.plan.window = number(&mut parser)?,
            "connect-timeout-ms" => {
                args.connect_timeout = Duration::from_millis(number(&mut parser)?)
            }
            _ => return Err(lexopt::Arg::Long(&name).unexpected()),
        }
    }
    Ok(Some(args))
}

/// The report, as printed.
#[derive(Serialize)]
struct Printed<'a> {
    run: &'a str,
    published: u64,
    duplicates: u64,
    first_seq: u64,
    last_seq: u64,
    elapsed_ms: u64,
    per_second: f64,
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(Some(args)) => args,
        Ok(None) => {
            let _ = writeln!(std::io::stdout(), "{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => return fail(&format!("{e}\n{USAGE}")),
    };
    // The run id becomes part of every event id and message id: keep it a plain token.
    if !via_worker::valid_id(&args.plan.run) {
        return fail("--run must be 1 to 64 letters, digits, '-' or '_'");
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    match runtime.block_on(run(&args)) {
        Ok(line) => {
            let _ = writeln!(std::io::stdout(), "{line}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

async fn run(args: &Args) -> Result<String, String> {
    let url = &args.common.url;
    let client = nats_ws::start(args.common.options("via-publisher", "publisher")?)
        .map_err(|e| format!("{url}: {e}"))?;
    // Waits for the first connection (a server starting up), up to the timeout.
    let connected = async {
        let mut status = client.status_stream();
        if client.status().is_connected() {
            return;
        }
        while let Some(s) = status.next().await {
            if s.is_connected() {
                return;
            }
        }
    };
    if tokio::time::timeout(args.connect_timeout, connected)
        .await
        .is_err()
    {
        client.close();
        return Err(format!(
            "no server at {url} after {} ms",
            args.connect_timeout.as_millis()
        ));
    }
    let js = client.jetstream();
    let result = publisher::publish(&js, &args.common.settings, &args.plan, |_| {}).await;
    client.close();
    let report = result.map_err(|e| {
        format!(
            "publishing to {} (stream {}) failed: {e}",
            url, args.common.settings.stream
        )
    })?;
    let secs = report.elapsed.as_secs_f64();
    let printed = Printed {
        run: &args.plan.run,
        published: report.published,
        duplicates: report.duplicates,
        first_seq: report.first_seq,
        last_seq: report.last_seq,
        elapsed_ms: report.elapsed.as_millis() as u64,
        per_second: if secs > 0.0 {
            (report.published as f64 / secs).round()
        } else {
            0.0
        },
    };
    serde_json::to_string(&printed).map_err(|e| e.to_string())
}

fn fail(message: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "via-publisher: {message}");
    ExitCode::FAILURE
}

//! `via-sensor`: a simulated temperature sensor that speaks MQTT 3.1.1 (rumqttc) to nats-server's
//! MQTT listener. While connected, every `--every-ms` it takes a reading
//! (`via_playground::sensor::simulated`) and publishes `{"temp": 21.37}` to the topic
//! `device/temp` at QoS 0 — which nats-server delivers to NATS subscribers of `device.temp`.
//! While disconnected it takes none, and reconnects for as long as it runs, unless the server
//! refuses its login twice in a row for the same reason: then it says why and exits 1. With
//! `--count N` it leaves after N readings were sent; on SIGINT or SIGTERM it disconnects and
//! exits 0.
//!
//! One task: the ticks and the signals interrupt rumqttc's `EventLoop::poll`, which keeps what it
//! read, wrote or has to report across that. Ticks only while connected, so a connection attempt
//! is never cut short (its 5 s timeout holds).
//!
//! QoS 0, not 1: with a clean session (each run has a new random client id, and leaves no session
//! behind in the server's JetStream), rumqttc drops the QoS 1 publishes still unacknowledged when
//! the connection breaks (a new session means nothing to resend), so QoS 1 would buy nothing
//! across a reconnect; and a reading is superseded by the next one anyway.
//!
//! Stdout: each payload sent, one per line, once it is written to the server's connection.
//! Stderr: the connection as it comes and goes, and what goes wrong.

use std::collections::VecDeque;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use lexopt::ValueExt;
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, MqttOptions, Outgoing, Packet, QoS,
};
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::{Instant, MissedTickBehavior};
use via_playground::sensor;

const USAGE: &str =
    "usage: via-sensor [--url mqtt://HOST:PORT] [--every-ms MS] [--count N] [--seed N]
  publishes a simulated temperature to MQTT topic device/temp (NATS subject device.temp) every
  --every-ms (default 1000), --count times (default: until stopped); the url defaults to
  $VIA_MQTT_URL, then mqtt://127.0.0.1:1883; --seed picks the simulated series (default: random)";

/// Where the server's MQTT listener is when neither `--url` nor `VIA_MQTT_URL` says.
const DEFAULT_URL: &str = "mqtt://127.0.0.1:1883";
const DEFAULT_PORT: u16 = 1883;

/// The first wait before reconnecting, doubled up to the second.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// The same trouble is said again at most this often while it lasts.
const TROUBLE_EVERY: Duration = Duration::from_secs(10);
/// A login refused this many times in a row for the same reason ends the run (nats.go gives up
/// on the same authorization error twice from a server): retrying cannot change the credentials,
/// and via-agent's restart backoff paces the next tries better than a retry every 2 s for ever.
const LOGIN_REFUSALS: u32 = 2;
/// How long leaving waits for the DISCONNECT (and what was published before it) to be written.
const LEAVE_LIMIT: Duration = Duration::from_secs(2);

struct Args {
    url: String,
    every: Duration,
    count: Option<u64>,
    seed: u64,
}

fn parse() -> Result<Option<Args>, lexopt::Error> {
    let mut args = Args {
        url: std::env::var("VIA_MQTT_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| DEFAULT_URL.to_owned()),
        every: Duration::from_millis(1000),
        count: None,
        seed: fastrand::u64(..),
    };
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            lexopt::Arg::Long("help") | lexopt::Arg::Short('h') => return Ok(None),
            lexopt::Arg::Long("url") => args.url = parser.value()?.string()?,
            lexopt::Arg::Long("every-ms") => {
                let ms: u64 = parser.value()?.parse()?;
                if ms == 0 {
                    return Err("--every-ms must be at least 1".into());
                }
                args.every = Duration::from_millis(ms);
            }
            lexopt::Arg::Long("count") => {
                let count: u64 = parser.value()?.parse()?;
                if count == 0 {
                    return Err(
                        "--count must be at least 1 (leave it out to run until stopped)".into(),
                    );
                }
                args.count = Some(count);
            }
            lexopt::Arg::Long("seed") => args.seed = parser.value()?.parse()?,
            other => return Err(other.unexpected()),
        }
    }
    Ok(Some(args))
}

/// `mqtt://host:port` (or `tcp://`, or a bare `host[:port]`) → host and port.
fn host_port(url: &str) -> Result<(String, u16), String> {
    let rest = match url.split_once("://") {
        Some(("mqtt" | "tcp", rest)) => rest,
        Some((scheme, _)) => {
            return Err(format!(
                "{url}: only mqtt:// (MQTT over plain TCP) is supported, not {scheme}://"
            ))
        }
        None => url,
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = match rest.rsplit_once(':') {
        // An IPv6 address without a port, e.g. [::1].
        Some((_, port)) if port.ends_with(']') => (rest, DEFAULT_PORT),
        Some((host, port)) => match port.parse() {
            Ok(port) => (host, port),
            Err(_) => return Err(format!("{url}: {port:?} is not a port number")),
        },
        None => (rest, DEFAULT_PORT),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains(['/', '@', '?', '#']) {
        return Err(format!("{url}: expected mqtt://HOST:PORT"));
    }
    Ok((host.to_owned(), port))
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
    let (host, port) = match host_port(&args.url) {
        Ok(hp) => hp,
        Err(e) => return fail(&e),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    match runtime.block_on(run(args, host, port)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

async fn run(args: Args, host: String, port: u16) -> Result<(), String> {
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let id = format!("via-sensor-{:08x}", fastrand::u32(..));
    let mut options = MqttOptions::new(id.clone(), host.clone(), port);
    options.set_keep_alive(Duration::from_secs(5));
    // Its own user (publish device.temp only), when the server has accounts.
    let password = via_credentials::password("sensor")?;
    let signed_in = password.is_some();
    if let Some(password) = password {
        options.set_credentials("sensor", password);
    }
    // Room for the readings of a few ticks; a reading that finds it full is skipped.
    let (client, mut eventloop) = AsyncClient::new(options, 8);
    let mut ticker = tokio::time::interval(args.every);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);

    let mut trouble = Trouble { last: None };
    let mut connected = false;
    // Payloads handed to the client and not yet written, in order (rumqttc writes them so).
    let mut queued: VecDeque<String> = VecDeque::new();
    let mut step: u64 = 0;
    let mut sent: u64 = 0;
    let mut retry = RETRY_FIRST;
    let mut retry_at: Option<Instant> = None;
    // The login refusals in a row, with the last one's reason.
    let mut refused: Option<(ConnectReturnCode, u32)> = None;
    // Set once leaving: the DISCONNECT is on its way, and this is how long it may take.
    let mut leaving: Option<Instant> = None;

    loop {
        let wanted = args
            .count
            .is_none_or(|count| sent + (queued.len() as u64) < count);
        // Deadlines for the branches that are off while they are None.
        let give_up_leaving = leaving.unwrap_or_else(Instant::now);
        let retry_now = retry_at.unwrap_or_else(Instant::now);
        tokio::select! {
            _ = sigint.recv(), if leaving.is_none() => {
                if !leave(&client, connected, &mut leaving) { break; }
            }
            _ = sigterm.recv(), if leaving.is_none() => {
                if !leave(&client, connected, &mut leaving) { break; }
            }
            _ = tokio::time::sleep_until(give_up_leaving), if leaving.is_some() => {
                say_err("via-sensor: the disconnect was not written in time; leaving anyway");
                break;
            }
            _ = ticker.tick(), if connected && wanted && leaving.is_none() => {
                let payload = sensor::payload(sensor::simulated(args.seed, step));
                step += 1;
                let topic = sensor::MQTT_TOPIC;
                match client.try_publish(topic, QoS::AtMostOnce, false, payload.clone()) {
                    Ok(()) => queued.push_back(payload),
                    Err(e) => trouble.say(&format!("reading skipped: {e}")),
                }
            }
            _ = tokio::time::sleep_until(retry_now), if retry_at.is_some() => {
                retry_at = None;
            }
            event = eventloop.poll(), if retry_at.is_none() => match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    connected = true;
                    // The first reading right away, then every --every-ms.
                    ticker.reset_immediately();
                    retry = RETRY_FIRST;
                    refused = None;
                    trouble.clear();
                    say_err(&format!(
                        "via-sensor: connected to mqtt://{host}:{port} as {id}; publishing to {} \
                         every {} ms",
                        sensor::MQTT_TOPIC,
                        args.every.as_millis()
                    ));
                }
                Ok(Event::Outgoing(Outgoing::Publish(_))) => {
                    if let Some(payload) = queued.pop_front() {
                        say_out(&payload);
                        sent += 1;
                        if args.count == Some(sent) && !leave(&client, connected, &mut leaving) {
                            break;
                        }
                    }
                }
                Ok(Event::Outgoing(Outgoing::Disconnect)) if leaving.is_some() => break,
                Ok(_) => {}
                Err(e) => {
                    // What was queued is dropped by rumqttc with the session (see the module doc).
                    queued.clear();
                    if leaving.is_some() {
                        break;
                    }
                    if connected {
                        let lost = format!("lost mqtt://{host}:{port}: {e}; reconnecting");
                        say_err(&format!("via-sensor: {lost}"));
                        connected = false;
                    } else {
                        trouble.say(&why(&e, &host, port));
                    }
                    refused = match (&e, refused) {
                        (ConnectionError::ConnectionRefused(code), Some((last, n)))
                            if *code == last =>
                        {
                            Some((last, n + 1))
                        }
                        (ConnectionError::ConnectionRefused(code), _) if is_login(*code) => {
                            Some((*code, 1))
                        }
                        _ => None,
                    };
                    if let Some((code, LOGIN_REFUSALS)) = refused {
                        return Err(refusal(code, &host, port, signed_in));
                    }
                    retry_at = Some(Instant::now() + retry);
                    retry = (retry * 2).min(RETRY_MAX);
                }
            },
        }
    }
    say_err(&format!(
        "via-sensor: {id} left after sending {sent} reading(s)"
    ));
    Ok(())
}

/// Starts leaving: a DISCONNECT queued behind what was published, when connected. `false` when
/// there is nothing to wait for.
fn leave(client: &AsyncClient, connected: bool, leaving: &mut Option<Instant>) -> bool {
    if !connected || client.try_disconnect().is_err() {
        return false;
    }
    *leaving = Some(Instant::now() + LEAVE_LIMIT);
    true
}

/// Why a connection attempt failed, for a person.
fn why(error: &ConnectionError, host: &str, port: u16) -> String {
    match error {
        ConnectionError::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => format!(
            "nothing answers MQTT on {host}:{port}: is nats-server's mqtt listener on \
             (nats-server.conf `mqtt {{ port: {port} }}`)?"
        ),
        ConnectionError::NetworkTimeout => format!(
            "no MQTT answer from {host}:{port} within 5 s: is that nats-server's mqtt port?"
        ),
        ConnectionError::ConnectionRefused(code) => {
            format!("mqtt://{host}:{port} refused the connection: {code:?}")
        }
        other => format!("cannot connect to mqtt://{host}:{port}: {other}"),
    }
}

/// Whether the server refused who this is (not that it is busy, or the protocol).
fn is_login(code: ConnectReturnCode) -> bool {
    matches!(
        code,
        ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized
    )
}

/// Why the run ends after its login was refused, for a person (never the password).
fn refusal(code: ConnectReturnCode, host: &str, port: u16, signed_in: bool) -> String {
    let reason = match code {
        ConnectReturnCode::BadUserNamePassword => "wrong user name or password",
        _ => "not authorized",
    };
    let whom = if signed_in {
        format!(
            "as sensor {LOGIN_REFUSALS} times in a row: {reason} (its password comes from ${}, \
             else {}); leaving",
            via_credentials::variable("sensor"),
            via_credentials::file().display()
        )
    } else {
        format!(
            "without credentials {LOGIN_REFUSALS} times in a row: {reason} (no password for \
             sensor in ${} or {}); leaving",
            via_credentials::variable("sensor"),
            via_credentials::file().display()
        )
    };
    format!("mqtt://{host}:{port} refused the login {whom}")
}

/// The same trouble said once, then again only every [`TROUBLE_EVERY`] while it lasts (retries
/// come every 2 s at most; a line each would flood the terminal).
struct Trouble {
    last: Option<(String, Instant)>,
}

impl Trouble {
    fn say(&mut self, line: &str) {
        let now = Instant::now();
        let repeat = self
            .last
            .as_ref()
            .is_some_and(|(said, at)| said == line && now.duration_since(*at) < TROUBLE_EVERY);
        if !repeat {
            say_err(&format!("via-sensor: {line}"));
            self.last = Some((line.to_owned(), now));
        }
    }

    fn clear(&mut self) {
        self.last = None;
    }
}

fn say_out(line: &str) {
    // Not println!: it panics when stdout is closed (e.g. piped into a finished `head`).
    let _ = writeln!(std::io::stdout(), "{line}");
}

fn say_err(line: &str) {
    // Not eprintln!: it panics when stderr is closed.
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn fail(message: &str) -> ExitCode {
    say_err(&format!("via-sensor: {message}"));
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::host_port;

    #[test]
    fn urls() {
        let ok = |url: &str| host_port(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(ok("mqtt://127.0.0.1:1883"), ("127.0.0.1".into(), 1883));
        assert_eq!(ok("mqtt://localhost"), ("localhost".into(), 1883));
        assert_eq!(ok("tcp://h:2000/"), ("h".into(), 2000));
        assert_eq!(ok("h:2000"), ("h".into(), 2000));
        assert_eq!(ok("mqtt://[::1]:1884"), ("::1".into(), 1884));
        assert_eq!(ok("mqtt://[::1]"), ("::1".into(), 1883));
        for bad in [
            "ws://127.0.0.1:8080/mqtt",
            "mqtts://h:8883",
            "mqtt://:1883",
            "mqtt://h:port",
            "mqtt://h:1883/x",
            "mqtt://u@h:1883",
            "mqtt://h:70000",
        ] {
            assert!(host_port(bad).is_err(), "{bad}");
        }
    }
}

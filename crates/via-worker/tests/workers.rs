//! The guarantees against a real server, with the real binaries: churn (a join, a kill -9,
//! a clean leave) while 20 000 events flow, a stolen lease, a server restart. Every worker records
//! what it processed and its lease changes (`--record`); the checks read those files and the
//! `leases` bucket. Timings are short (lease TTL 3 s) so that the file runs in well under a minute.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nats_ws::jetstream::JetStream;
use serde::Deserialize;
use test_support::TestServer;
use via_workers::{now_ms, LeaseValue, StatusEvent, StatusKind};

const PARTITIONS: u32 = 8;
const LEASE_TTL_MS: u64 = 3000;
/// The worker's timing for these tests: renew every second, look every 250 ms, stop 500 ms
/// before a lease could expire, redeliver what a killed worker held after 2 s.
const TIMING: [&str; 12] = [
    "--lease-ttl-ms",
    "3000",
    "--renew-ms",
    "1000",
    "--tick-ms",
    "250",
    "--margin-ms",
    "500",
    "--ack-wait-ms",
    "2000",
    "--memory-ms",
    "1000",
];

/// One via-worker process; killed (not left) on drop, so a failing test leaves nothing behind.
struct Worker {
    id: String,
    child: Child,
    record: PathBuf,
    stderr: PathBuf,
    started_at: u64,
}

impl Worker {
    fn start(url: &str, dir: &Path, id: &str) -> Worker {
        let record = dir.join(format!("{id}.jsonl"));
        let stderr = dir.join(format!("{id}.err"));
        let child = Command::new(env!("CARGO_BIN_EXE_via-worker"))
            .args(["--url", url, "--id", id, "--record"])
            .arg(&record)
            .args(TIMING)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join(format!("{id}.out"))).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("start via-worker");
        Worker {
            id: id.to_owned(),
            child,
            record,
            stderr,
            started_at: now_ms(),
        }
    }

    fn records(&self) -> Records {
        Records::read(&self.record)
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
        // SAFETY: a signal to our own child, which has not been waited for (so the pid is its).
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill {} {}", signal, self.id);
    }

    /// Kill -9; returns when it is gone, with the time it was killed.
    fn kill(&mut self) -> u64 {
        self.signal(libc::SIGKILL);
        let at = now_ms();
        let _ = self.child.wait();
        at
    }

    /// SIGTERM, then waits (bounded) for a clean exit.
    async fn leave(&mut self) {
        self.signal(libc::SIGTERM);
        let status = wait_for(10, &format!("{} to leave", self.id), || {
            self.child.try_wait().ok().flatten()
        })
        .await;
        assert!(
            status.success(),
            "{} exited with {status}: {}",
            self.id,
            std::fs::read_to_string(&self.stderr).unwrap_or_default()
        );
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            let said = std::fs::read_to_string(&self.stderr).unwrap_or_default();
            let tail: Vec<&str> = said.lines().rev().take(15).collect();
            eprintln!(
                "--- {} stderr, last lines, newest first ---\n{}",
                self.id,
                tail.join("\n")
            );
        }
    }
}

#[derive(Debug, Deserialize)]
struct Processed {
    p: u32,
    id: Option<String>,
    at: u64,
    /// Read for the failure messages.
    #[allow(dead_code)]
    seq: u64,
    #[allow(dead_code)]
    redelivered: bool,
}

#[derive(Deserialize)]
struct StatusLine {
    status: StatusEvent,
}

/// What one worker recorded.
#[derive(Default)]
struct Records {
    processed: Vec<Processed>,
    status: Vec<StatusEvent>,
}

impl Records {
    /// Complete lines only: the worker may be writing the last one.
    fn read(path: &Path) -> Records {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut records = Records::default();
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        for line in complete.lines() {
            if let Ok(p) = serde_json::from_str::<Processed>(line) {
                records.processed.push(p);
            } else {
                let s: StatusLine = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("{}: {e}: {line}", path.display()));
                records.status.push(s.status);
            }
        }
        records
    }

    /// Partitions held after the last status line.
    fn held(&self) -> BTreeSet<u32> {
        let mut held = BTreeSet::new();
        for s in &self.status {
            match (s.kind, s.partition) {
                (StatusKind::Acquired, Some(p)) => {
                    held.insert(p);
                }
                (StatusKind::Released | StatusKind::Lost | StatusKind::Expired, Some(p)) => {
                    held.remove(&p);
                }
                _ => {}
            }
        }
        held
    }

    /// Lease intervals per partition, `[from, to)`; a lease still held ends at `end`.
    fn intervals(&self, end: u64) -> BTreeMap<u32, Vec<(u64, u64)>> {
        let mut open: BTreeMap<u32, u64> = BTreeMap::new();
        let mut done: BTreeMap<u32, Vec<(u64, u64)>> = BTreeMap::new();
        for s in &self.status {
            match (s.kind, s.partition) {
                (StatusKind::Acquired, Some(p)) => {
                    assert!(open.insert(p, s.at).is_none(), "acquired {p} twice");
                }
                (StatusKind::Released | StatusKind::Lost | StatusKind::Expired, Some(p)) => {
                    let from = open.remove(&p).expect("ended a lease not held");
                    done.entry(p).or_default().push((from, s.at));
                }
                _ => {}
            }
        }
        for (p, from) in open {
            done.entry(p).or_default().push((from, end.max(from)));
        }
        done
    }
}

/// Polls `probe` every 50 ms until it gives a value, failing after `secs` seconds.
async fn wait_for<T>(secs: u64, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The owner of every partition with a lease key.
async fn owners(js: &JetStream) -> Option<BTreeMap<u32, String>> {
    let leases = js.key_value("leases").await.ok()?;
    let mut owners = BTreeMap::new();
    for key in leases.keys().await.ok()? {
        let Some(p) = key.strip_prefix("p.").and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let entry = leases.get(&key).await.ok()??;
        let value: LeaseValue = serde_json::from_slice(&entry.value).ok()?;
        owners.insert(p, value.owner);
    }
    Some(owners)
}

/// Waits until every partition is leased by one of `live`, the shares differing by at most one.
async fn wait_balanced(js: &JetStream, live: &[&str], secs: u64) -> BTreeMap<u32, String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut last = None;
    loop {
        if let Some(owners) = owners(js).await {
            let mut shares: BTreeMap<&str, u32> = live.iter().map(|w| (*w, 0)).collect();
            let mut ok = owners.len() == PARTITIONS as usize;
            for owner in owners.values() {
                match shares.get_mut(owner.as_str()) {
                    Some(n) => *n += 1,
                    None => ok = false,
                }
            }
            let (lo, hi) = (shares.values().min(), shares.values().max());
            if ok && hi.zip(lo).is_some_and(|(hi, lo)| hi - lo <= 1) {
                return owners;
            }
            last = Some(owners);
        }
        assert!(
            Instant::now() < deadline,
            "leases not balanced over {live:?} after {secs} s: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn publisher(url: &str, count: u64, rate: u32, run: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_via-publisher"))
        .args(["--url", url, "--run", run])
        .args(["--count", &count.to_string(), "--rate", &rate.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start via-publisher")
}

#[derive(Debug, Deserialize)]
struct Report {
    published: u64,
    last_seq: u64,
}

async fn published(mut child: Child) -> Report {
    let status = wait_for(60, "the publisher to finish", || {
        child.try_wait().ok().flatten()
    })
    .await;
    let out = child.wait_with_output().expect("publisher output");
    assert!(
        status.success(),
        "via-publisher: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the publisher's report")
}

/// Ids processed, with how often, over all records.
fn processed_ids(records: &[&Records]) -> HashMap<String, u32> {
    let mut seen = HashMap::new();
    for r in records {
        for p in &r.processed {
            if let Some(id) = &p.id {
                *seen.entry(id.clone()).or_insert(0) += 1;
            }
        }
    }
    seen
}

fn all_ids(run: &str, count: u64) -> impl Iterator<Item = String> + '_ {
    (0..count).map(move |i| format!("{run}-{i}"))
}

async fn wait_all_processed(workers: &[&Worker], runs: &[(&str, u64)], secs: u64) {
    let what = format!("every event of {runs:?} to be processed");
    wait_for(secs, &what, || {
        let records: Vec<Records> = workers.iter().map(|w| w.records()).collect();
        let seen = processed_ids(&records.iter().collect::<Vec<_>>());
        runs.iter()
            .all(|(run, n)| all_ids(run, *n).all(|id| seen.contains_key(&id)))
            .then_some(())
    })
    .await;
}

/// No two workers' intervals on one partition overlap; every event was processed inside one of
/// its worker's intervals.
fn check_leases(all: &[(&str, &Records, u64)]) {
    let mut by_partition: BTreeMap<u32, Vec<(&str, u64, u64)>> = BTreeMap::new();
    for (id, records, end) in all {
        let intervals = records.intervals(*end);
        for e in &records.processed {
            let inside = intervals
                .get(&e.p)
                .is_some_and(|v| v.iter().any(|(from, to)| (*from..=*to).contains(&e.at)));
            assert!(
                inside,
                "{id} processed {:?} of partition {} at {} outside its leases {:?}",
                e.id,
                e.p,
                e.at,
                intervals.get(&e.p)
            );
        }
        for (p, v) in intervals {
            by_partition
                .entry(p)
                .or_default()
                .extend(v.into_iter().map(|(a, b)| (*id, a, b)));
        }
    }
    for (p, v) in by_partition {
        for (i, a) in v.iter().enumerate() {
            for b in &v[i + 1..] {
                if a.0 != b.0 {
                    assert!(
                        a.2 <= b.1 || b.2 <= a.1,
                        "partition {p}: {a:?} and {b:?} overlap"
                    );
                }
            }
        }
    }
}

/// The tests that time a rebalancing take this, so that they do not share the machine's cores
/// with each other (a join measured while another test churns its own workers ran past its bound),
/// nor with the tests that load the machine most (workers at full rate, racing setups).
static TIMED: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn client(server: &TestServer) -> JetStream {
    let client = nats_ws::connect(nats_ws::Options::new(server.client_url()))
        .await
        .expect("connect");
    client.jetstream()
}

/// A server and one worker, w1, holding every partition.
async fn one_worker() -> (TestServer, tempfile::TempDir, JetStream, Worker) {
    let server = TestServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let js = client(&server).await;
    let w1 = Worker::start(&server.client_url(), dir.path(), "w1");
    wait_balanced(&js, &["w1"], 15).await;
    (server, dir, js, w1)
}

#[tokio::test(flavor = "current_thread")]
async fn churn_loses_nothing_and_never_shares_a_partition() {
    let _alone = TIMED.lock().await;
    let server = TestServer::start();
    let url = server.client_url();
    let dir = tempfile::tempdir().expect("temp dir");
    let js = client(&server).await;

    let mut w1 = Worker::start(&url, dir.path(), "w1");
    let mut w2 = Worker::start(&url, dir.path(), "w2");
    let w3 = Worker::start(&url, dir.path(), "w3");
    wait_balanced(&js, &["w1", "w2", "w3"], 15).await;

    const COUNT: u64 = 20_000;
    let run = "churn";
    let feed = publisher(&url, COUNT, 4000, run);
    wait_for(20, "the first 2000 events to be processed", || {
        let n: usize = [&w1, &w2, &w3]
            .iter()
            .map(|w| w.records().processed.len())
            .sum();
        (n >= 2000).then_some(())
    })
    .await;

    // A join, balanced within two lease periods.
    let w4 = Worker::start(&url, dir.path(), "w4");
    wait_balanced(&js, &["w1", "w2", "w3", "w4"], 10).await;
    let join_ms = now_ms() - w4.started_at;
    eprintln!("the join was balanced after {join_ms} ms");
    assert!(
        join_ms <= 2 * LEASE_TTL_MS,
        "join balanced after {join_ms} ms"
    );

    // A kill, mid-stream, then a clean leave.
    let held_at_kill = w1.records().held();
    let killed_at = w1.kill();
    w2.leave().await;
    let report = published(feed).await;
    assert_eq!(report.published, COUNT);

    let workers = [&w1, &w2, &w3, &w4];
    wait_all_processed(&workers, &[(run, COUNT)], 40).await;
    wait_balanced(&js, &["w3", "w4"], 15).await;

    let records: Vec<Records> = workers.iter().map(|w| w.records()).collect();
    let seen = processed_ids(&records.iter().collect::<Vec<_>>());
    let expected: BTreeSet<String> = all_ids(run, COUNT).collect();
    let got: BTreeSet<String> = seen.keys().cloned().collect();
    assert_eq!(
        got, expected,
        "processed ids differ from the published ones"
    );

    // Duplicates only for what the killed worker had processed but not acknowledged.
    let killed: BTreeSet<&str> = records[0]
        .processed
        .iter()
        .filter_map(|p| p.id.as_deref())
        .collect();
    let duplicates: Vec<&String> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id)
        .collect();
    eprintln!(
        "{} duplicate(s); the killed worker held {held_at_kill:?}; the last sequence {}",
        duplicates.len(),
        report.last_seq
    );
    let bound = 64 * held_at_kill.len();
    assert!(
        duplicates.len() <= bound,
        "{} duplicates, more than {bound}",
        duplicates.len()
    );
    for id in &duplicates {
        let by: Vec<(usize, &Processed)> = records
            .iter()
            .enumerate()
            .flat_map(|(w, r)| r.processed.iter().map(move |p| (w + 1, p)))
            .filter(|(_, p)| p.id.as_deref() == Some(id.as_str()))
            .collect();
        assert!(
            killed.contains(id.as_str()),
            "{id} was processed twice without the kill, by (w<n>, what it recorded) {by:?}"
        );
    }

    let end = now_ms();
    check_leases(&[
        ("w1", &records[0], killed_at),
        ("w2", &records[1], end),
        ("w3", &records[2], end),
        ("w4", &records[3], end),
    ]);
    // The one that left released everything it held.
    assert!(records[1].held().is_empty(), "w2 left holding leases");
}

#[tokio::test(flavor = "current_thread")]
async fn a_stolen_lease_stops_consumption_at_once() {
    let _alone = TIMED.lock().await;
    let (server, _dir, js, w1) = one_worker().await;
    let url = server.client_url();

    // Another writer takes partition 0's key: the next renewal loses the compare-and-set.
    let leases = js.key_value("leases").await.expect("leases bucket");
    let thief = serde_json::to_vec(&LeaseValue {
        owner: "thief".into(),
        renewed_at: now_ms(),
    })
    .expect("json");
    let stolen_at = now_ms();
    leases.put("p.0", thief).await.expect("steal p.0");

    // Events for every partition while the key is the thief's.
    let report = published(publisher(&url, 2000, 0, "stolen")).await;
    assert_eq!(report.published, 2000);

    let lost = wait_for(10, "w1 to lose partition 0", || {
        w1.records()
            .status
            .into_iter()
            .find(|s| s.kind == StatusKind::Lost && s.partition == Some(0) && s.worker == "w1")
    })
    .await;
    let delay = lost.at.saturating_sub(stolen_at);
    eprintln!("the lease was lost {delay} ms after the steal");
    // At the first renewal after the steal (within a renewal period and a tick, 1.25 s, on an
    // idle machine); what must hold on any machine: well before a lease TTL, which is how long
    // a new owner waits before it takes a key over.
    assert!(
        delay < LEASE_TTL_MS - 500,
        "lost {delay} ms after the steal"
    );

    // Nothing is lost: once the thief's key expires, w1 takes partition 0 back and catches up.
    wait_all_processed(&[&w1], &[("stolen", 2000)], 20).await;
    let records = w1.records();
    let back = records
        .status
        .iter()
        .find(|s| s.kind == StatusKind::Acquired && s.partition == Some(0) && s.at > lost.at)
        .expect("partition 0 acquired again");
    // Not one event of partition 0 between losing it and getting it back.
    for e in records.processed.iter().filter(|e| e.p == 0) {
        assert!(
            e.at <= lost.at || e.at >= back.at,
            "processed {:?} of partition 0 at {} while the thief held it ({}..{})",
            e.id,
            e.at,
            lost.at,
            back.at
        );
    }
    // It could only come back once the key expired: a TTL after the thief wrote it.
    assert!(
        back.at >= stolen_at + LEASE_TTL_MS - 100,
        "taken back at {} before the thief's key could expire ({})",
        back.at,
        stolen_at + LEASE_TTL_MS
    );
    check_leases(&[("w1", &records, now_ms())]);
}

/// An event of partition 0 with id `id`, stored in the stream; its stream sequence.
async fn publish_to_p0(js: &JetStream, id: &str) -> u64 {
    let event = via_workers::Event {
        id: id.to_owned(),
        key: "p0".to_owned(),
        published_at: now_ms(),
    };
    let payload = serde_json::to_vec(&event).expect("json");
    js.publish("poc.events.p.0", payload)
        .await
        .expect("publish to partition 0")
        .seq
}

#[tokio::test(flavor = "current_thread")]
async fn a_stalled_workers_old_batch_is_not_delivered_a_third_time() {
    let _alone = TIMED.lock().await;
    let (_server, _dir, js, w1) = one_worker().await;
    let processed = |id: &str| {
        w1.records()
            .processed
            .iter()
            .filter(|e| e.id.as_deref() == Some(id))
            .count()
    };

    // w1 stalls (a stopped process, as a hidden tab or a starved machine) with an event in its
    // socket: published while w1's pull on partition 0 waits, so the server delivers it at once.
    let mut stalled = None;
    for attempt in 0..20 {
        let id = format!("stall-{attempt}");
        w1.signal(libc::SIGSTOP);
        let seq = publish_to_p0(&js, &id).await;
        let deadline = Instant::now() + Duration::from_millis(300);
        let mut delivered = false;
        while Instant::now() < deadline && !delivered {
            let info = js
                .consumer_info("EVENTS", "p-0")
                .await
                .expect("consumer info");
            // This event out, and nothing else unacknowledged (the one before may not be acked).
            delivered = info.delivered.stream_seq == seq && info.num_ack_pending == 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if delivered {
            stalled = Some(id);
            break;
        }
        // w1 was between two pulls: let it take this one, and try again.
        w1.signal(libc::SIGCONT);
        wait_for(10, &format!("w1 to process {id}"), || {
            (processed(&id) == 1).then_some(())
        })
        .await;
    }
    let stalled = stalled.expect("an event delivered to w1 while it was stopped");

    // Its ack wait (2 s) passes: the server delivers it again, here, and this copy is held (an
    // in-progress ack every 500 ms) while w1 comes back with its old one.
    let mut copies = js
        .fetch(
            "EVENTS",
            "p-0",
            nats_ws::jetstream::FetchOptions {
                batch: 1,
                expires: Duration::from_secs(4),
            },
        )
        .await
        .expect("fetch the event again");
    let copy = copies.pop().expect("the event, again after its ack wait");
    assert_eq!(copy.info().expect("info").delivered, 2);
    w1.signal(libc::SIGCONT);

    // Two events after it, one after the other: once w1 has processed the second, it has pulled
    // twice since it came back, and whatever it sent back before is long in.
    for after in ["after-1", "after-2"] {
        publish_to_p0(&js, after).await;
        let deadline = Instant::now() + Duration::from_secs(15);
        while processed(after) == 0 {
            assert!(Instant::now() < deadline, "w1 did not process {after}");
            copy.in_progress().expect("in progress");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(
        processed(&stalled),
        0,
        "w1 processed {stalled} while another copy of it was out (held here, unacknowledged)"
    );
    copy.ack().expect("ack");
}

#[tokio::test(flavor = "current_thread")]
async fn a_server_restart_loses_nothing() {
    let _alone = TIMED.lock().await;
    let mut server = TestServer::start();
    let url = server.client_url();
    let dir = tempfile::tempdir().expect("temp dir");
    let js = client(&server).await;
    let w1 = Worker::start(&url, dir.path(), "w1");
    let w2 = Worker::start(&url, dir.path(), "w2");
    wait_balanced(&js, &["w1", "w2"], 15).await;

    let before = published(publisher(&url, 5000, 0, "before")).await;
    assert_eq!(before.published, 5000);
    // Mid-stream: some processed, and the workers are at it.
    wait_for(20, "the first events to be processed", || {
        let n = w1.records().processed.len() + w2.records().processed.len();
        (n >= 500).then_some(())
    })
    .await;
    server.stop();
    // Both notice (a trouble line on stderr) before the server comes back.
    wait_for(10, "the workers to notice the server is gone", || {
        [&w1, &w2]
            .iter()
            .all(|w| {
                !std::fs::read_to_string(&w.stderr)
                    .unwrap_or_default()
                    .is_empty()
            })
            .then_some(())
    })
    .await;
    server.start_again();

    let after = published(publisher(&url, 5000, 0, "after")).await;
    assert_eq!(after.published, 5000);
    wait_all_processed(&[&w1, &w2], &[("before", 5000), ("after", 5000)], 40).await;
    let js = client(&server).await;
    wait_balanced(&js, &["w1", "w2"], 15).await;
    let (r1, r2) = (w1.records(), w2.records());
    let end = now_ms();
    check_leases(&[("w1", &r1, end), ("w2", &r2, end)]);
    let kept_or_again: Vec<_> = [&r1, &r2]
        .iter()
        .flat_map(|r| &r.status)
        .filter(|s| s.kind != StatusKind::Joined)
        .map(|s| (s.worker.as_str(), s.kind, s.partition))
        .collect();
    eprintln!("lease changes: {kept_or_again:?}");
}

/// The lease buckets deleted under running workers (`nats kv rm leases`, the /kv console): they
/// make them again and go on. Before, every tick failed to read the leases, nothing was acquired,
/// and the held leases ran out: nothing more was processed until a new program set them up.
#[tokio::test(flavor = "current_thread")]
async fn deleted_lease_buckets_are_made_again_and_the_work_goes_on() {
    let _alone = TIMED.lock().await;
    let server = TestServer::start();
    let url = server.client_url();
    let dir = tempfile::tempdir().expect("temp dir");
    let js = client(&server).await;
    let w1 = Worker::start(&url, dir.path(), "w1");
    let w2 = Worker::start(&url, dir.path(), "w2");
    wait_balanced(&js, &["w1", "w2"], 15).await;

    let deleted_at = now_ms();
    js.delete_key_value("leases").await.expect("delete leases");
    js.delete_key_value("workers")
        .await
        .expect("delete workers");
    // The leases held then are gone with their bucket: each worker stops consuming under them.
    wait_for(
        15,
        "every worker to give up the leases of the deleted bucket",
        || {
            [&w1, &w2]
                .iter()
                .all(|w| {
                    w.records().status.iter().any(|s| {
                        s.at >= deleted_at
                            && matches!(s.kind, StatusKind::Lost | StatusKind::Expired)
                    })
                })
                .then_some(())
        },
    )
    .await;
    let after = published(publisher(&url, 2000, 0, "after")).await;
    assert_eq!(after.published, 2000);
    wait_all_processed(&[&w1, &w2], &[("after", 2000)], 40).await;
    wait_balanced(&js, &["w1", "w2"], 15).await;
    let (r1, r2) = (w1.records(), w2.records());
    let end = now_ms();
    check_leases(&[("w1", &r1, end), ("w2", &r2, end)]);
}

/// Workers and publishers starting together all set up the stream, its consumers and the lease
/// buckets (as `bench/workers.sh` and the tests here start them): every one of them succeeds,
/// whichever create wins. nats-server 2.9.10 answers a create that lost such a race
/// "subjects overlap with an existing stream" (the winner) now and then: once in a full
/// `bench/run.sh` for the stream, once in CI for a bucket, where the losing worker gave up at
/// its start. The window is narrow: six setups race on each of five fresh servers.
#[tokio::test(flavor = "current_thread")]
async fn setups_racing_on_a_fresh_server_all_succeed() {
    let _alone = TIMED.lock().await;
    let settings = via_workers::Settings::default();
    for round in 0..5 {
        let server = TestServer::start();
        let mut clients = Vec::new();
        for _ in 0..6 {
            clients.push(client(&server).await);
        }
        let results = futures::future::join_all(
            clients
                .iter()
                .map(|js| via_workers::setup::ensure_all(js, &settings)),
        )
        .await;
        for (i, result) in results.iter().enumerate() {
            assert!(
                result.is_ok(),
                "round {round}, setup {i}: {:?}",
                result.as_ref().err()
            );
        }
        let info = clients[0]
            .stream_info(&settings.stream)
            .await
            .expect("the stream");
        assert_eq!(info.config.subjects, [settings.events_filter()]);
        for bucket in [&settings.lease_bucket, &settings.workers_bucket] {
            clients[0].key_value(bucket).await.expect("the bucket");
        }
    }
}

/// Stopped while its first acquisitions are on their way (stop comes with the first lease key the
/// server stores), a worker lets them finish and releases what they took. Before, the key of an
/// acquisition cut short stayed until its TTL, with nobody working on its partition.
#[tokio::test(flavor = "current_thread")]
async fn a_worker_stopped_while_acquiring_leaves_no_lease_behind() {
    let server = TestServer::start();
    let js = client(&server).await;
    let mut stored = js.client().subscribe("$KV.leases.>").expect("subscribe");
    js.client().flush().await.expect("flush");
    let settings = via_workers::Settings {
        // Long enough that a key left behind is still there when it is looked for.
        lease_ttl: Duration::from_secs(60),
        // Also how long a stop waits for the lease round: ample on a loaded machine.
        renew_every: Duration::from_secs(3),
        tick: Duration::from_millis(250),
        safety_margin: Duration::from_millis(500),
        ..Default::default()
    };
    let me = via_workers::Identity::new(via_workers::WorkerKind::Process, "test", None);
    struct Quiet;
    impl via_workers::worker::Observer for Quiet {}
    let worker = nats_ws::connect(nats_ws::Options::new(server.client_url()))
        .await
        .expect("connect");
    let stop = async {
        use futures::StreamExt;
        stored.next().await;
    };
    let summary = tokio::time::timeout(
        Duration::from_secs(20),
        via_workers::worker::run(&worker, &settings, &me, &mut Quiet, stop),
    )
    .await
    .expect("stopped within 20 s")
    .expect("ran");
    // The first round's acquisitions, sent together, were on their way when the stop came.
    assert!(
        (1..=settings.partitions.into()).contains(&summary.acquired),
        "acquired {} of {} partitions after being stopped at the first: {summary:?}",
        summary.acquired,
        settings.partitions
    );
    assert_eq!(summary.released, summary.acquired, "{summary:?}");
    let left = owners(&js).await.expect("the leases bucket");
    assert!(
        left.values().all(|owner| *owner != me.id),
        "leases left behind by the stopped worker: {left:?}"
    );
}

/// What a worker run in the test's own process said: its lease changes and its troubles.
#[derive(Clone, Default)]
struct Said {
    status: std::sync::Arc<std::sync::Mutex<Vec<StatusEvent>>>,
    trouble: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// The stream sequence of every message processed, in order.
    processed: std::sync::Arc<std::sync::Mutex<Vec<u64>>>,
}

impl via_workers::worker::Observer for Said {
    fn processed(
        &mut self,
        _partition: u32,
        stream_seq: u64,
        _event: Option<&via_workers::Event>,
        _redelivered: bool,
        _at: u64,
    ) {
        self.processed
            .lock()
            .expect("not poisoned")
            .push(stream_seq);
    }

    fn status(&mut self, event: &StatusEvent) {
        self.status
            .lock()
            .expect("not poisoned")
            .push(event.clone());
    }

    fn trouble(&mut self, what: &str, error: &via_workers::WorkerError) {
        let line = format!("{what}: {error}");
        self.trouble.lock().expect("not poisoned").push(line);
    }

    fn untroubled(&mut self) {
        let mut said = self.trouble.lock().expect("not poisoned");
        if said.last().is_some_and(|t| t != OVER) {
            said.push(OVER.to_owned());
        }
    }
}

/// What [`Said`] records when a round went through after troubles.
const OVER: &str = "(over)";

impl Said {
    fn processed(&self) -> Vec<u64> {
        self.processed.lock().expect("not poisoned").clone()
    }

    fn last_trouble(&self) -> Option<String> {
        self.trouble.lock().expect("not poisoned").last().cloned()
    }

    fn count(&self, kind: StatusKind) -> usize {
        let said = self.status.lock().expect("not poisoned");
        said.iter().filter(|s| s.kind == kind).count()
    }

    /// Whether the last thing said of its troubles is that they are over.
    fn over(&self) -> bool {
        self.last_trouble().as_deref() == Some(OVER)
    }

    fn troubled(&self, about: &str) -> bool {
        self.troubles(about) > 0
    }

    fn troubles(&self, about: &str) -> usize {
        let said = self.trouble.lock().expect("not poisoned");
        said.iter().filter(|t| t.contains(about)).count()
    }
}

/// Waits (bounded) until the stream stores a write of every lease key of `settings` that was sent
/// at or after `since` (its `renewed_at`).
async fn leases_stored_since(
    js: &JetStream,
    settings: &via_workers::Settings,
    since: u64,
    what: &str,
) {
    test_support::within(15, what, async {
        loop {
            // Bound at each look: the first may come before the worker made the bucket.
            let Ok(leases) = js.key_value(&settings.lease_bucket).await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let mut all = true;
            for p in 0..settings.partitions {
                let entry = leases.get(&settings.lease_key(p)).await.ok().flatten();
                let value = entry.and_then(|e| serde_json::from_slice::<LeaseValue>(&e.value).ok());
                all &= value.is_some_and(|v| v.renewed_at >= since);
            }
            if all {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

/// A worker says when its troubles are over (a tab shows the last one until then: it showed
/// "reaching the server: no connection (retrying)" for good after a restart).
#[tokio::test(flavor = "current_thread")]
async fn troubles_are_said_to_be_over_once_a_round_goes_through() {
    let mut server = TestServer::start();
    let settings = two_partitions(Duration::from_secs(10));
    let (server_ref, settings_ref) = (&mut server, &settings);
    let url = server_ref.client_url();
    alongside(&url, settings_ref, |said| async move {
        wait_for(15, "a lease", || {
            (said.count(StatusKind::Acquired) > 0).then_some(())
        })
        .await;
        assert_eq!(said.last_trouble(), None);
        server_ref.stop();
        wait_for(15, "the trouble said", || {
            said.troubled("reaching the server").then_some(())
        })
        .await;
        assert!(!said.over());
        server_ref.start_again();
        wait_for(20, "the trouble said to be over", || {
            said.over().then_some(())
        })
        .await;
    })
    .await;
}

/// The connection back wakes the worker at once, not at its next tick (a hidden tab's timers may
/// be a minute apart: the leases that outlived a short outage ran out meanwhile).
#[tokio::test(flavor = "current_thread")]
async fn a_worker_is_woken_by_its_connection_coming_back() {
    let mut server = TestServer::start();
    let settings = via_workers::Settings {
        tick: Duration::from_secs(20),
        ..two_partitions(Duration::from_secs(60))
    };
    let js = client(&server).await;
    let (server_ref, settings_ref, js) = (&mut server, &settings, &js);
    let url = server_ref.client_url();
    alongside(&url, settings_ref, |said| async move {
        wait_for(15, "both leases", || {
            (said.count(StatusKind::Acquired) == 2).then_some(())
        })
        .await;
        server_ref.stop();
        // A tick while disconnected says so: the next is 20 s away from here.
        wait_for(30, "a tick without the server", || {
            said.troubled("reaching the server").then_some(())
        })
        .await;
        server_ref.start_again();
        let back = now_ms();
        // Renewals are upkeep: made as soon as the worker's client is back (its reconnect
        // backoff, a few seconds), not at the next tick, 20 s after the last.
        leases_stored_since(js, settings_ref, back, "renewals after the reconnect").await;
        let took = now_ms() - back;
        assert!(
            took < 10_000,
            "renewed {took} ms after the server came back"
        );
    })
    .await;
}

/// Two partitions, renewed every second, looked at every 250 ms: for a worker run in-process.
fn two_partitions(lease_ttl: Duration) -> via_workers::Settings {
    via_workers::Settings {
        partitions: 2,
        lease_ttl,
        renew_every: Duration::from_secs(1),
        tick: Duration::from_millis(250),
        safety_margin: Duration::from_millis(500),
        ..Default::default()
    }
}

/// Runs a worker in this process, its client on `url`, until `script` (given what the worker
/// says) ends; then stops it and returns what it did.
async fn alongside<F: std::future::Future<Output = ()>>(
    url: &str,
    settings: &via_workers::Settings,
    script: impl FnOnce(Said) -> F,
) -> via_workers::worker::Summary {
    alongside_until(url, settings, |said, stop, _| async move {
        script(said).await;
        let _ = stop.send(());
    })
    .await
}

/// Runs a worker in this process, its client on `url`, beside `script`, which is given what the
/// worker says, its stop and its id; returns what it did once both have ended.
async fn alongside_until<F: std::future::Future<Output = ()>>(
    url: &str,
    settings: &via_workers::Settings,
    script: impl FnOnce(Said, futures::channel::oneshot::Sender<()>, String) -> F,
) -> via_workers::worker::Summary {
    let me = via_workers::Identity::new(via_workers::WorkerKind::Process, "test", None);
    let said = Said::default();
    let mut observer = said.clone();
    let worker = nats_ws::connect(nats_ws::Options::new(url))
        .await
        .expect("connect");
    let (stop, stopped) = futures::channel::oneshot::channel::<()>();
    let (summary, ()) = tokio::join!(
        via_workers::worker::run(&worker, settings, &me, &mut observer, async {
            let _ = stopped.await;
        }),
        script(said, stop, me.id.clone())
    );
    summary.expect("ran")
}

/// A client of `server` that tries again every 100 ms while it is away.
async fn retrying_client(server: &TestServer) -> nats_ws::Client {
    nats_ws::connect(nats_ws::Options::new(server.client_url()).reconnect(
        nats_ws::ReconnectPolicy {
            initial_delay: Duration::from_millis(100),
            factor: 1.0,
            max_delay: Duration::from_millis(100),
            max_attempts: None,
            jitter: Duration::ZERO,
        },
    ))
    .await
    .expect("connect")
}

/// A publish run across an outage longer than a publish's deadline pauses and goes on once the
/// server is back, each event stored once: it gave up at the first publish past its deadline
/// ("gave up after 30s without an acknowledgement"; a user's run of 20 000 stopped at 4 242 in a
/// 64 s outage, and nothing said which were missing). Here the deadline is 1 s, the outage 3 s.
#[tokio::test(flavor = "current_thread")]
async fn a_publish_run_goes_on_after_an_outage_longer_than_its_deadline() {
    let mut server = TestServer::start();
    let client = retrying_client(&server).await;
    let js = client
        .jetstream()
        .with_publish_deadline(Duration::from_secs(1));
    let settings = via_workers::Settings::default();
    let plan = via_workers::publisher::Plan {
        rate: Some(500),
        ..via_workers::publisher::Plan::new(2000, "outage")
    };
    let acked = std::cell::Cell::new(0);
    let (report, ()) = tokio::join!(
        via_workers::publisher::publish(&js, &settings, &plan, |n| acked.set(n)),
        async {
            wait_for(10, "a first acknowledgement", || {
                (acked.get() > 0).then_some(())
            })
            .await;
            server.stop();
            tokio::time::sleep(Duration::from_secs(3)).await;
            server.start_again();
        }
    );
    let report = report.expect("the run went on after the outage");
    assert_eq!(report.published, 2000, "{report:?}");
    let info = client
        .jetstream()
        .stream_info(&settings.stream)
        .await
        .expect("stream info");
    assert_eq!(info.state.messages, 2000, "stored once each: {report:?}");
}

/// A publish run started while the server is away waits for it: it failed a request timeout
/// later ("not connected to the server … retry once connected") before making the stream ready,
/// and /workers went on showing that once connected. Here the requests time out after 500 ms
/// and the server is away for 2 s.
#[tokio::test(flavor = "current_thread")]
async fn a_publish_run_started_while_the_server_is_away_waits_for_it() {
    let mut server = TestServer::start();
    let client = retrying_client(&server).await;
    server.stop();
    wait_for(10, "the client to see the server gone", || {
        (!client.status().is_connected()).then_some(())
    })
    .await;
    let js = client.jetstream().with_timeout(Duration::from_millis(500));
    let settings = via_workers::Settings::default();
    let plan = via_workers::publisher::Plan::new(100, "away");
    let (report, ()) = tokio::join!(
        via_workers::publisher::publish(&js, &settings, &plan, |_| {}),
        async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            server.start_again();
        }
    );
    let report = report.expect("the run waited for the server");
    assert_eq!(report.published, 100, "{report:?}");
    let info = client
        .jetstream()
        .stream_info(&settings.stream)
        .await
        .expect("stream info");
    assert_eq!(info.state.messages, 100, "{report:?}");
}

/// A batch that comes as the connection drops is not processed: its acks would wait for the next
/// connection, and after an outage longer than the lease or the ack wait the partition's new
/// owner would have been given the same messages again (a user saw 19–43 events of 20 000
/// processed twice by two tabs and a native worker, across a 25–64 s outage). It is left to the
/// ack wait, and processed once after it.
#[tokio::test(flavor = "current_thread")]
async fn a_batch_that_comes_as_the_connection_drops_is_left_for_redelivery() {
    let mut server = TestServer::start();
    let upstream = server.client_url().replace("nats://", "");
    let relay = test_support::LateAnswers::start(&upstream).await;
    let js = client(&server).await;
    let settings = via_workers::Settings {
        partitions: 1,
        ack_wait: Duration::from_secs(3),
        ..two_partitions(Duration::from_secs(10))
    };
    let (relay, js, server) = (&relay, &js, &mut server);
    let summary = alongside(&relay.url(), &settings, |said| async move {
        wait_for(15, "the partition acquired", || {
            (said.count(StatusKind::Acquired) == 1).then_some(())
        })
        .await;
        // The worker's next pull reaches the server; what the server sends from then on waits.
        relay.hold_after("$JS.API.CONSUMER.MSG.NEXT");
        test_support::within(5, "the next pull", relay.triggered()).await;
        let mut seqs = Vec::new();
        for i in 0..3 {
            seqs.push(publish_to_p0(js, &format!("cut-{i}")).await);
        }
        // The server goes with the batch on its way: the worker gets it, then loses the link.
        server.stop();
        relay.release();
        wait_for(10, "the batch left for redelivery", || {
            said.troubled("its batch is left for redelivery")
                .then_some(())
        })
        .await;
        assert_eq!(
            said.processed(),
            Vec::<u64>::new(),
            "processed while disconnected"
        );
        server.start_again();
        // Delivered again after the ack wait: each processed once.
        wait_for(20, "the batch processed", || {
            (said.processed().len() >= 3).then_some(())
        })
        .await;
        let mut processed = said.processed();
        processed.sort_unstable();
        assert_eq!(processed, seqs, "each once");
    })
    .await;
    assert_eq!(summary.processed, 3, "{summary:?}");
}

/// A renewal the server stored but answered after the worker had stopped waiting for it (a
/// renewal period): the worker finds its own write in the key and keeps the lease. Before, its
/// next renewal, at the revision before, lost the compare-and-set: the worker called the lease
/// lost, and nobody consumed the partition until the key expired, a lease TTL later.
#[tokio::test(flavor = "current_thread")]
async fn a_renewal_answered_late_keeps_its_lease() {
    let server = TestServer::start();
    let upstream = server.client_url().replace("nats://", "");
    let relay = test_support::LateAnswers::start(&upstream).await;
    let js = client(&server).await;
    let settings = two_partitions(Duration::from_secs(10));
    let (relay, script_js, script_settings) = (&relay, &js, &settings);
    let summary = alongside(&relay.url(), &settings, |said| async move {
        let (js, settings) = (script_js, script_settings);
        wait_for(15, "both partitions acquired", || {
            (said.count(StatusKind::Acquired) == 2).then_some(())
        })
        .await;
        let held_at = now_ms();
        relay.hold();
        leases_stored_since(js, settings, held_at, "renewals stored while answers wait").await;
        // Its answer waits past its bound (1 s): the worker says it was not renewed.
        wait_for(10, "a renewal given up with its answer held", || {
            said.troubled("renewing partition").then_some(())
        })
        .await;
        let released_at = now_ms();
        relay.release();
        // Kept: renewed again once the answers come.
        leases_stored_since(js, settings, released_at, "renewals after the answers came").await;
    })
    .await;
    assert_eq!(
        (summary.lost, summary.expired),
        (0, 0),
        "leases lost or expired: {summary:?}"
    );
    assert_eq!(summary.acquired, 2, "{summary:?}");
}

/// A lease of a partition past the worker's last (a worker with more partitions shares the
/// buckets) is said as trouble for as long as it lasts, and over once the key is gone.
#[tokio::test(flavor = "current_thread")]
async fn a_worker_with_other_partitions_beside_it_is_said() {
    let server = TestServer::start();
    let js = client(&server).await;
    let settings = two_partitions(Duration::from_secs(10));
    let script_js = &js;
    alongside(&server.client_url(), &settings, |said| async move {
        wait_for(15, "both partitions acquired", || {
            (said.count(StatusKind::Acquired) == 2).then_some(())
        })
        .await;
        let leases = script_js
            .key_value("leases")
            .await
            .expect("the lease bucket");
        let value = serde_json::json!({"owner": "proc-wider", "renewed_at": now_ms()});
        leases
            .create("p.5", value.to_string())
            .await
            .expect("a lease of partition 5");
        wait_for(10, "the mismatch said", || {
            said.troubled("partition 5 is held by a worker with more")
                .then_some(())
        })
        .await;
        leases.delete("p.5").await.expect("deleted");
        wait_for(10, "the mismatch over", || said.over().then_some(())).await;
    })
    .await;
}

/// A stop that comes while a tick waits for its answers (a tab closed mid-tick, which the browser
/// runs no further) frees the partitions before it waits for the tick to end: the lease keys are
/// deleted at once. Before, only once the tick had ended or a renewal period had passed.
#[tokio::test(flavor = "current_thread")]
async fn a_worker_stopped_mid_tick_frees_its_partitions_before_it_waits() {
    let server = TestServer::start();
    let upstream = server.client_url().replace("nats://", "");
    let relay = test_support::LateAnswers::start(&upstream).await;
    let js = client(&server).await;
    // A tick's step waits a renewal period at most for its answer, and a stop as long for the
    // tick: 5 s each, against the 3 s the leases have to be gone in.
    let settings = via_workers::Settings {
        renew_every: Duration::from_secs(5),
        ..two_partitions(Duration::from_secs(60))
    };
    let (relay, js) = (&relay, &js);
    let summary = alongside_until(&relay.url(), &settings, |said, stop, me| async move {
        wait_for(15, "both partitions acquired", || {
            (said.count(StatusKind::Acquired) == 2).then_some(())
        })
        .await;
        // The next tick's read of the workers holds every answer after it.
        relay.hold_after("CONSUMER.CREATE.KV_workers");
        test_support::within(5, "a tick waiting for its answers", relay.triggered()).await;
        let _ = stop.send(());
        let asked = Instant::now();
        test_support::within(3, "the leases deleted while the tick still waits", async {
            while owners(js)
                .await
                .is_none_or(|held| held.values().any(|owner| *owner == me))
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        eprintln!("leases deleted {:?} after the stop", asked.elapsed());
        relay.release();
    })
    .await;
    assert_eq!(summary.released, 2, "{summary:?}");
}

/// A stop that comes while a renewal's answer is on its way: the renewal was stored, at a
/// revision after the one the worker holds, and leaving still deletes the key (its first delete,
/// at the revision held, loses the compare-and-set; the key is read, found its own, and deleted at
/// the renewal's revision) rather than leave it to expire with nobody working on its partition.
#[tokio::test(flavor = "current_thread")]
async fn a_worker_stopped_while_renewing_leaves_no_lease_behind() {
    let server = TestServer::start();
    let upstream = server.client_url().replace("nats://", "");
    let relay = test_support::LateAnswers::start(&upstream).await;
    let js = client(&server).await;
    let settings = two_partitions(Duration::from_secs(60));
    let relay = &relay;
    let mut me = String::new();
    let summary = alongside_until(&relay.url(), &settings, |said, stop, id| {
        me = id;
        async move {
            wait_for(15, "both partitions acquired", || {
                (said.count(StatusKind::Acquired) == 2).then_some(())
            })
            .await;
            // Both held: the next write of a lease is a renewal.
            relay.hold_after(WRITE_OF_A_LEASE);
            test_support::within(5, "a renewal sent", relay.triggered()).await;
            let _ = stop.send(());
            relay.release();
        }
    })
    .await;
    assert_eq!(summary.released, 2, "{summary:?}");
    let left = owners(&js).await.expect("the leases bucket");
    assert!(
        left.values().all(|owner| *owner != me),
        "leases left behind by the stopped worker: {left:?}"
    );
}

/// Acquisitions the server stored but answered after the worker had stopped waiting for them:
/// the keys hold the worker's own writes, so nobody else may take the partitions; the worker
/// finds that out and consumes them. Before, they stayed idle until the keys expired (a TTL).
#[tokio::test(flavor = "current_thread")]
async fn acquisitions_answered_late_are_taken() {
    let server = TestServer::start();
    let upstream = server.client_url().replace("nats://", "");
    let relay = test_support::LateAnswers::start(&upstream).await;
    // The first create of a lease key goes through; its answer, and all after it, wait.
    relay.hold_after("$KV.leases.p.");
    let js = client(&server).await;
    let settings = two_partitions(Duration::from_secs(10));
    let (relay, script_js, script_settings) = (&relay, &js, &settings);
    let summary = alongside(&relay.url(), &settings, |said| async move {
        let (js, settings) = (script_js, script_settings);
        let made_at = now_ms();
        leases_stored_since(js, settings, 0, "both lease keys made").await;
        // Past the acquisitions' bound (1 s): the worker says they were not answered.
        wait_for(10, "an acquisition given up with its answer held", || {
            said.troubled("acquiring partition").then_some(())
        })
        .await;
        assert_eq!(
            said.count(StatusKind::Acquired),
            0,
            "acquired with the answers held"
        );
        relay.release();
        wait_for(15, "both partitions taken once the answers come", || {
            (said.count(StatusKind::Acquired) == 2).then_some(())
        })
        .await;
        // Held for good: renewed, well before the keys made by the lost answers would expire.
        leases_stored_since(js, settings, now_ms(), "renewals of the taken leases").await;
        let taken = now_ms() - made_at;
        assert!(
            taken < 10_000,
            "renewed {taken} ms after the keys were made"
        );
    })
    .await;
    assert_eq!(
        (summary.acquired, summary.lost, summary.expired),
        (2, 0, 0),
        "{summary:?}"
    );
}

/// What a client sends to write a lease key (a create is a publish with headers), and not to
/// read one (a direct get names the key after `$JS.API.DIRECT.GET.KV_leases.`).
const WRITE_OF_A_LEASE: &str = "PUB $KV.leases.p.";

/// Two acquisitions of each key go unanswered, and the second is the one stored (the keys the
/// first made were deleted meanwhile): the worker knows the second one's write too and takes the
/// partitions once the answers come. Before, it kept only the first try's time, did not know the
/// key for its own, and the partitions stayed idle until the keys expired (a TTL).
#[tokio::test(flavor = "current_thread")]
async fn a_second_acquisition_answered_late_is_taken() {
    let server = TestServer::start();
    let upstream = server.client_url().replace("nats://", "");
    let relay = test_support::LateAnswers::start(&upstream).await;
    relay.hold_after(WRITE_OF_A_LEASE);
    let js = client(&server).await;
    let settings = two_partitions(Duration::from_secs(10));
    let (relay, script_js, script_settings) = (&relay, &js, &settings);
    let summary = alongside(&relay.url(), &settings, |said| async move {
        let (js, settings) = (script_js, script_settings);
        leases_stored_since(js, settings, 0, "both lease keys made").await;
        wait_for(10, "the first acquisitions given up", || {
            (said.troubles("acquiring partition") >= 2).then_some(())
        })
        .await;
        // Someone removes the keys the first tries made (without a trace: a create after a
        // delete marker needs a second round trip, which a held answer would stop); the next
        // tries are held too.
        let stream = format!("KV_{}", settings.lease_bucket);
        for p in 0..settings.partitions {
            let subject = format!("$KV.{}.{}", settings.lease_bucket, settings.lease_key(p));
            js.purge_subject(&stream, &subject).await.expect("purge");
        }
        let deleted_at = now_ms();
        relay.hold_after(WRITE_OF_A_LEASE);
        relay.release();
        leases_stored_since(js, settings, deleted_at, "both keys made again").await;
        wait_for(10, "the second acquisitions given up", || {
            (said.troubles("acquiring partition") >= 4).then_some(())
        })
        .await;
        assert_eq!(
            said.count(StatusKind::Acquired),
            0,
            "acquired with the answers held"
        );
        let released_at = now_ms();
        relay.release();
        // Well within the keys' TTL (10 s): what the worker finds is its second try's write.
        wait_for(5, "both partitions taken once the answers come", || {
            (said.count(StatusKind::Acquired) == 2).then_some(())
        })
        .await;
        leases_stored_since(js, settings, released_at, "renewals of the taken leases").await;
    })
    .await;
    assert_eq!(
        (summary.acquired, summary.lost, summary.expired),
        (2, 0, 0),
        "{summary:?}"
    );
}

/// The lease bucket deleted and made again by someone else with a shorter TTL while a worker runs:
/// its keys would expire before the deadlines the worker keeps, so a partition could be taken by
/// another while its holder still consumes it. The worker takes no lease in it, says why, and
/// goes on once the bucket is as the settings say. Before, it checked the TTL only at its start
/// and took its leases in whatever bucket was there.
#[tokio::test(flavor = "current_thread")]
async fn a_lease_bucket_made_again_with_another_ttl_is_not_used() {
    let server = TestServer::start();
    let js = client(&server).await;
    let settings = two_partitions(Duration::from_secs(3));
    let script_js = &js;
    alongside(&server.client_url(), &settings, |said| async move {
        let js = script_js;
        wait_for(15, "both partitions acquired", || {
            (said.count(StatusKind::Acquired) == 2).then_some(())
        })
        .await;
        // The worker may make it again between the delete and the create: then again.
        let short = nats_ws::kv::KvConfig::new("leases").ttl(Duration::from_secs(1));
        let mut tries = 0;
        loop {
            js.delete_key_value("leases").await.expect("delete leases");
            match js.create_key_value(short.clone()).await {
                Ok(_) => break,
                Err(e) if tries < 5 => eprintln!("made again meanwhile ({e}); once more"),
                Err(e) => panic!("leases, 1 s: {e}"),
            }
            tries += 1;
        }
        let made_at = now_ms();
        wait_for(
            15,
            "the worker to say what is wrong with the bucket",
            || said.troubled("expires keys after 1000 ms").then_some(()),
        )
        .await;
        // Two TTLs past the one a worker waits after losing its leases to a deleted bucket: a
        // scenario's length, not a wait for something to happen.
        let quiet_until = made_at + 2 * 3000 + 1000;
        tokio::time::sleep(Duration::from_millis(quiet_until.saturating_sub(now_ms()))).await;
        assert_eq!(
            said.count(StatusKind::Acquired),
            2,
            "a lease taken in the 1 s bucket"
        );
        let bad = js.key_value("leases").await.expect("the 1 s bucket");
        assert_eq!(bad.keys().await.expect("its keys"), Vec::<String>::new());

        // Deleted again: the worker makes it as the settings say, and takes its leases there.
        js.delete_key_value("leases")
            .await
            .expect("delete the 1 s bucket");
        wait_for(20, "both partitions acquired again", || {
            (said.count(StatusKind::Acquired) == 4).then_some(())
        })
        .await;
    })
    .await;
    let leases = js.key_value("leases").await.expect("the leases bucket");
    assert_eq!(
        leases.status().await.expect("its status").ttl,
        settings.lease_ttl
    );
}

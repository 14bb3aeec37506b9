//! The rules of `/workers` that need no browser: which workers are live, how a status event or
//! a memory sample reads, the memory chart's points, the publish form. Unit-tested natively.

use std::collections::BTreeMap;

use via_workers::{MemoryStats, StatusEvent, StatusKind, WorkerInfo, WorkerKind};

use crate::model::format_bytes;

/// Lines kept in the status feed.
pub const FEED_LINES: usize = 200;
/// Memory samples kept per worker: 10 minutes at one every 5 s.
pub const MEMORY_SAMPLES: usize = 120;
/// Messages shown under "Recent messages".
pub const RECENT_MESSAGES: u64 = 20;
/// The most a payload shows of itself in the recent messages.
pub const PAYLOAD_CHARS: usize = 200;
/// The most events one click may publish.
pub const MAX_PUBLISH: u64 = 1_000_000;

/// The workers whose heartbeat is younger than `ttl_ms`, tabs and processes each by id.
///
/// The bucket's max age removes a silent worker's key, but a 2.9 server tells no watcher when it
/// does: the heartbeat's age decides here.
pub fn live_workers(
    infos: impl IntoIterator<Item = WorkerInfo>,
    now_ms: u64,
    ttl_ms: u64,
) -> Vec<WorkerInfo> {
    let mut live: Vec<WorkerInfo> = infos
        .into_iter()
        .filter(|w| w.heartbeat_at.saturating_add(ttl_ms) > now_ms)
        .collect();
    crate::sort::sort_by(&mut live, |a, b| {
        (kind_order(a.kind), &a.id).cmp(&(kind_order(b.kind), &b.id))
    });
    live
}

fn kind_order(kind: WorkerKind) -> u8 {
    match kind {
        WorkerKind::Tab => 0,
        WorkerKind::Process => 1,
    }
}

pub fn kind_name(kind: WorkerKind) -> &'static str {
    match kind {
        WorkerKind::Tab => "tab",
        WorkerKind::Process => "process",
    }
}

/// Where a worker runs: its host (or browser), and its pid when it has one.
pub fn where_text(info: &WorkerInfo) -> String {
    match info.pid {
        Some(pid) => format!("{} · pid {pid}", info.host),
        None => info.host.clone(),
    }
}

/// `0 1 2 3`, or `none`.
pub fn partitions_text(partitions: &[u32]) -> String {
    if partitions.is_empty() {
        return "none".into();
    }
    partitions
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The browser's name and major version from its user agent (`Chrome 131`), for the workers
/// table's "where": enough to tell two tabs' browsers apart, short enough for a cell.
pub fn browser_summary(user_agent: &str) -> String {
    // Order matters: Edge and Opera say Chrome too, Chrome says Safari too.
    for (token, name) in [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("HeadlessChrome/", "Headless Chrome"),
        ("Chrome/", "Chrome"),
        ("Version/", "Safari"),
    ] {
        if let Some(rest) = user_agent.split(token).nth(1) {
            let major: String = rest.chars().take_while(char::is_ascii_digit).collect();
            return if major.is_empty() {
                name.to_owned()
            } else {
                format!("{name} {major}")
            };
        }
    }
    "browser".into()
}

/// What a status event says, without its time: `acquired p3 (share 4 of 8, 2 workers)`.
pub fn describe_status(event: &StatusEvent) -> String {
    let verb = match event.kind {
        StatusKind::Joined => "joined",
        StatusKind::Left => "left",
        StatusKind::Acquired => "acquired",
        StatusKind::Released => "released",
        StatusKind::Lost => "lost",
        StatusKind::Expired => "let expire",
    };
    let workers = match event.live_workers {
        1 => "1 worker".to_owned(),
        n => format!("{n} workers"),
    };
    match event.partition {
        Some(p) => format!("{verb} p{p} (share {}, {workers})", event.share),
        None => format!("{verb} ({workers})"),
    }
}

/// The kind's word, for a CSS class per kind.
pub fn status_class(kind: StatusKind) -> &'static str {
    match kind {
        StatusKind::Joined | StatusKind::Acquired => "status-gain",
        StatusKind::Left | StatusKind::Released => "status-give",
        StatusKind::Lost | StatusKind::Expired => "status-loss",
    }
}

/// The figure a worker's chart follows: allocated bytes natively, the wasm memory in a tab,
/// else whatever the platform reported.
pub fn memory_value(stats: &MemoryStats) -> Option<u64> {
    stats
        .allocated_bytes
        .or(stats.wasm_memory_bytes)
        .or(stats.rss_bytes)
        .or(stats.js_heap_bytes)
}

/// The last sample in words: `allocated 1.2 MiB · RSS 8.0 MiB` or `wasm 1.1 MiB · JS heap 4.0 MiB`.
pub fn memory_text(stats: &MemoryStats) -> String {
    let parts: Vec<String> = [
        ("allocated", stats.allocated_bytes),
        ("RSS", stats.rss_bytes),
        ("wasm", stats.wasm_memory_bytes),
        ("JS heap", stats.js_heap_bytes),
    ]
    .into_iter()
    .filter_map(|(name, v)| v.map(|v| format!("{name} {}", format_bytes(v))))
    .collect();
    if parts.is_empty() {
        "no figures reported".into()
    } else {
        parts.join(" · ")
    }
}

/// Workers whose memory is kept at most (the oldest heard from go first).
pub const MEMORY_SERIES: usize = 64;

/// Appends a sample (`at`: when it arrived) to its worker's series, keeping the last
/// [`MEMORY_SAMPLES`], and forgets the workers whose last sample came `forget_after_ms` or more
/// before it: every Join and every worker started is a new id, and a tab left open would keep
/// them all.
pub fn add_sample(
    series: &mut BTreeMap<String, Vec<MemoryStats>>,
    stats: MemoryStats,
    forget_after_ms: u64,
) {
    if !series.contains_key(&stats.worker) {
        let now = stats.at;
        series.retain(|_, list| {
            list.last()
                .is_some_and(|last| now.saturating_sub(last.at) < forget_after_ms)
        });
        // Anyone may publish samples under any name: at most this many series.
        while series.len() >= MEMORY_SERIES {
            let oldest = series
                .iter()
                .min_by_key(|(_, list)| list.last().map_or(0, |last| last.at))
                .map(|(worker, _)| worker.clone());
            match oldest {
                Some(worker) => series.remove(&worker),
                None => break,
            };
        }
    }
    let list = series.entry(stats.worker.clone()).or_default();
    list.push(stats);
    let excess = list.len().saturating_sub(MEMORY_SAMPLES);
    list.drain(..excess);
}

/// The chart's polyline points in a `width` × `height` box: time left to right (one sample per
/// step, the last at the right edge), value bottom to top from 0 to a bit above the largest, so
/// that flat memory draws a flat line and growth shows as a climb.
pub fn chart_points(values: &[u64], width: f64, height: f64) -> String {
    if values.is_empty() {
        return String::new();
    }
    let top = values.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.1;
    let step = if values.len() > 1 {
        width / (MEMORY_SAMPLES - 1) as f64
    } else {
        0.0
    };
    let start = width - step * (values.len() - 1) as f64;
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let x = start + step * i as f64;
            let y = height - (v as f64 / top) * height;
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A payload as text for the recent messages, cut at [`PAYLOAD_CHARS`].
pub fn payload_text(payload: &[u8]) -> String {
    crate::model::clip_payload(payload, PAYLOAD_CHARS)
}

/// The publish form, read: how many events and at what rate (`None`: as fast as acknowledged).
pub fn parse_publish(count: &str, rate: &str) -> Result<(u64, Option<u32>), String> {
    let count: u64 = count
        .trim()
        .parse()
        .map_err(|_| "the number of events must be a whole number".to_owned())?;
    if count == 0 || count > MAX_PUBLISH {
        return Err(format!("publish between 1 and {MAX_PUBLISH} events"));
    }
    let rate: u32 = rate.trim().parse().map_err(|_| {
        "the rate must be a whole number of events per second (0: as fast as acknowledged)"
            .to_owned()
    })?;
    Ok((count, (rate > 0).then_some(rate)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str, kind: WorkerKind, heartbeat_at: u64) -> WorkerInfo {
        WorkerInfo {
            id: id.into(),
            kind,
            host: "h".into(),
            pid: None,
            started_at: 0,
            heartbeat_at,
            partitions: vec![],
            processed: 0,
        }
    }

    #[test]
    fn a_silent_worker_drops_out_when_its_heartbeat_is_older_than_the_ttl() {
        let all = vec![
            info("proc-b", WorkerKind::Process, 11_000),
            info("tab-z", WorkerKind::Tab, 19_999),
            info("tab-a", WorkerKind::Tab, 5_000),
        ];
        let live = live_workers(all, 20_000, 10_000);
        let ids: Vec<&str> = live.iter().map(|w| w.id.as_str()).collect();
        // tab-a is 15 s old; tabs before processes, each by id.
        assert_eq!(ids, ["tab-z", "proc-b"]);
    }

    #[test]
    fn browsers_are_named_by_their_own_token() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        assert_eq!(browser_summary(chrome), "Chrome 131");
        let edge = "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/120.0 Safari/537.36 Edg/120.0.1";
        assert_eq!(browser_summary(edge), "Edge 120");
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(browser_summary(firefox), "Firefox 128");
        assert_eq!(browser_summary("curl/8"), "browser");
    }

    #[test]
    fn status_events_read_as_sentences() {
        let mut e = StatusEvent {
            kind: StatusKind::Acquired,
            worker: "tab-1".into(),
            partition: Some(3),
            at: 0,
            share: 4,
            live_workers: 2,
        };
        assert_eq!(describe_status(&e), "acquired p3 (share 4, 2 workers)");
        e.kind = StatusKind::Joined;
        e.partition = None;
        e.live_workers = 1;
        assert_eq!(describe_status(&e), "joined (1 worker)");
    }

    #[test]
    fn memory_follows_the_platforms_main_figure() {
        let native = MemoryStats {
            allocated_bytes: Some(2048),
            rss_bytes: Some(4096),
            ..Default::default()
        };
        assert_eq!(memory_value(&native), Some(2048));
        assert_eq!(memory_text(&native), "allocated 2.0 KiB · RSS 4.0 KiB");
        let tab = MemoryStats {
            wasm_memory_bytes: Some(1 << 20),
            ..Default::default()
        };
        assert_eq!(memory_value(&tab), Some(1 << 20));
        assert_eq!(memory_text(&MemoryStats::default()), "no figures reported");
    }

    #[test]
    fn series_keep_the_last_samples_per_worker() {
        let mut series = BTreeMap::new();
        for i in 0..(MEMORY_SAMPLES as u64 + 5) {
            add_sample(
                &mut series,
                MemoryStats {
                    worker: "w".into(),
                    at: i,
                    ..Default::default()
                },
                60_000,
            );
        }
        let w = &series["w"];
        assert_eq!(w.len(), MEMORY_SAMPLES);
        assert_eq!(w[0].at, 5);
        // Workers not heard from for the time given are forgotten.
        for i in 0..10_000u64 {
            let stats = MemoryStats {
                worker: format!("gone-{i}"),
                at: 1_000,
                ..Default::default()
            };
            add_sample(&mut series, stats, 60_000);
        }
        let stats = MemoryStats {
            worker: "now".into(),
            at: 61_000,
            ..Default::default()
        };
        add_sample(&mut series, stats, 60_000);
        assert_eq!(series.keys().collect::<Vec<_>>(), ["now"]);
        // And never more than MEMORY_SERIES at once, the longest unheard going first.
        for i in 0..1000u64 {
            let stats = MemoryStats {
                worker: format!("many-{i}"),
                at: 61_000 + i,
                ..Default::default()
            };
            add_sample(&mut series, stats, 60_000);
        }
        assert_eq!(series.len(), MEMORY_SERIES);
        assert!(series.contains_key("many-999"));
        assert!(!series.contains_key("now"));
    }

    #[test]
    fn flat_memory_draws_a_flat_line_ending_at_the_right_edge() {
        let points = chart_points(&[100, 100, 100], 119.0, 40.0);
        let ys: Vec<&str> = points
            .split(' ')
            .map(|p| p.split(',').nth(1).unwrap())
            .collect();
        assert!(ys.windows(2).all(|w| w[0] == w[1]), "{points}");
        assert!(points.ends_with("119.0,3.6"), "{points}");
        assert_eq!(chart_points(&[], 100.0, 40.0), "");
        // Growth climbs: the last point is higher (smaller y) than the first.
        let growing = chart_points(&[10, 20, 40], 119.0, 40.0);
        let first: f64 = growing
            .split(' ')
            .next()
            .unwrap()
            .split(',')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let last: f64 = growing
            .split(' ')
            .next_back()
            .unwrap()
            .split(',')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        assert!(last < first);
    }

    #[test]
    fn payloads_are_cut_and_never_fail() {
        assert_eq!(payload_text(b"{\"id\":1}"), "{\"id\":1}");
        assert_eq!(payload_text(&[0xff, b'a']), "\u{fffd}a");
        let long = "x".repeat(PAYLOAD_CHARS + 1);
        assert_eq!(
            payload_text(long.as_bytes()).chars().count(),
            PAYLOAD_CHARS + 1
        );
        assert!(payload_text(long.as_bytes()).ends_with('…'));
    }

    #[test]
    fn the_publish_form_is_checked() {
        assert_eq!(parse_publish("1000", "0"), Ok((1000, None)));
        assert_eq!(parse_publish(" 5 ", "200"), Ok((5, Some(200))));
        assert!(parse_publish("0", "0").is_err());
        assert!(parse_publish("abc", "0").is_err());
        assert!(parse_publish("10", "-1").is_err());
        assert!(parse_publish(&(MAX_PUBLISH + 1).to_string(), "0").is_err());
    }
}

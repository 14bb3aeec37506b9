//! CPU and memory of a process group from `/proc` (Linux). Reads only; never signals anything.

use std::collections::HashMap;
use std::time::Instant;

/// What one `/proc/<pid>/stat` line says that the agent uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub pid: u32,
    pub ppid: u32,
    pub pgrp: u32,
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    /// Exited, not yet reaped (state `Z` or `X`): holds no memory, files or ports.
    pub zombie: bool,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may itself hold
/// spaces and parentheses, so fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let pid = text.split_whitespace().next()?.parse().ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state): ppid is field 4, pgrp 5, utime 14, stime 15.
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    Some(Stat {
        pid,
        ppid: u32::try_from(field(4)?).ok()?,
        pgrp: u32::try_from(field(5)?).ok()?,
        cpu_ticks: field(14)? + field(15)?,
        zombie: matches!(fields.first(), Some(&"Z" | &"X")),
    })
}

/// `VmRSS` of `/proc/<pid>/status`, in bytes (0 for kernel threads and zombies, which have none).
pub fn parse_rss(status: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if n > 0 {
        n as u64
    } else {
        100
    }
}

/// What the members of one process group use together.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GroupUsage {
    pub cpu_ticks: u64,
    pub rss_bytes: u64,
    /// Members that are not zombies. Orphaned zombies stay in the group until PID 1 reaps them,
    /// which some container inits never do: only this says whether a group still runs.
    pub live: u32,
}

/// One pass over `/proc`: the usage of each group of `pgids` that has a member (a child leads its
/// own group, so this includes what it started, e.g. trunk's cargo). Reads a file per process:
/// call it once for all groups, off the runtime's thread.
pub fn groups_usage(pgids: &[u32]) -> HashMap<u32, GroupUsage> {
    let mut groups = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return groups;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Some(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .as_deref()
            .and_then(parse_stat)
        else {
            continue;
        };
        if !pgids.contains(&stat.pgrp) {
            continue;
        }
        let group: &mut GroupUsage = groups.entry(stat.pgrp).or_default();
        group.cpu_ticks += stat.cpu_ticks;
        if !stat.zombie {
            group.live += 1;
            group.rss_bytes +=
                std::fs::read_to_string(format!("/proc/{pid}/status")).map_or(0, |s| parse_rss(&s));
        }
    }
    groups
}

/// CPU percentage between two samples of one process group (100 = one core busy).
#[derive(Debug, Default)]
pub struct CpuMeter {
    last: Option<(u64, Instant)>,
}

impl CpuMeter {
    /// Records `ticks` at `now` and returns the share of a core used since the last sample (0 on
    /// the first, or when the group lost members and its total went down).
    pub fn sample(&mut self, ticks: u64, now: Instant) -> f64 {
        let percent = match self.last {
            Some((before, at)) => {
                let secs = now.duration_since(at).as_secs_f64();
                if secs > 0.0 {
                    ticks.saturating_sub(before) as f64 / clock_ticks_per_second() as f64 / secs
                        * 100.0
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        self.last = Some((ticks, now));
        (percent * 10.0).round() / 10.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn stat_with_a_hostile_command_name() {
        let line = "4242 (we ird) (x) S 1 4240 4240 0 -1 4194560 1 0 0 0 250 50 0 0 20 0 1 0 123 1000 200 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                pid: 4242,
                ppid: 1,
                pgrp: 4240,
                cpu_ticks: 300,
                zombie: false,
            })
        );
        let zombie = "7 (sh) Z 1 7 7 0 -1 4194560 1 0 0 0 2 1 0 0 20 0 1 0 123 0 0 0";
        assert!(parse_stat(zombie).unwrap().zombie);
        assert_eq!(parse_stat("12 (x) S 1"), None);
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn rss_in_bytes() {
        let status = "Name:\tsleep\nVmPeak:\t 8000 kB\nVmRSS:\t    1024 kB\nThreads:\t1\n";
        assert_eq!(parse_rss(status), 1024 * 1024);
        assert_eq!(parse_rss("Name:\tkthreadd\n"), 0);
    }

    #[test]
    fn own_process_is_readable() {
        let me = std::process::id();
        let stat =
            parse_stat(&std::fs::read_to_string(format!("/proc/{me}/stat")).unwrap()).unwrap();
        assert_eq!(stat.pid, me);
        // Two groups besides ours, one scan.
        let children: Vec<std::process::Child> = (0..2)
            .map(|_| {
                use std::os::unix::process::CommandExt;
                std::process::Command::new("sleep")
                    .arg("5")
                    .process_group(0)
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut groups = vec![stat.pgrp];
        groups.extend(children.iter().map(|c| c.id()));
        let usage = groups_usage(&groups);
        for g in &groups {
            assert!(usage[g].rss_bytes > 0 && usage[g].live >= 1, "group {g}");
        }
        assert_eq!(usage.len(), 3);
        for mut c in children {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    #[test]
    fn cpu_percent_from_two_samples() {
        let mut m = CpuMeter::default();
        let t0 = Instant::now();
        assert_eq!(m.sample(100, t0), 0.0);
        let hz = clock_ticks_per_second();
        let busy = m.sample(100 + hz, t0 + Duration::from_secs(2));
        assert_eq!(busy, 50.0);
        assert_eq!(m.sample(10, t0 + Duration::from_secs(4)), 0.0);
    }
}

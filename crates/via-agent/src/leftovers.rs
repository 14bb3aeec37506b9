//! What an agent that died without stopping its processes left running. A child dies with the
//! agent (`PR_SET_PDEATHSIG`), but what the child started does not: after `kill -9` of the agent,
//! a shell's `sleep`, trunk's cargo or a leaf's nats-server would go on running, holding their
//! ports, and the next agent would start them a second time beside them.
//!
//! Every process the agent starts inherits [`MARK`] = the agent's data directory; whatever else
//! carries that mark once the next agent holds the data directory's lock (so no other agent runs
//! there) is a leftover, and its process group is stopped: SIGTERM, then SIGKILL after a grace.
//! Linux only (`/proc`); processes of other users cannot be read, and are not the agent's.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::procfs::parse_stat;

/// The environment variable every managed process inherits: the agent's data directory.
pub const MARK: &str = "VIA_AGENT_DATA_DIR";

/// How long leftovers get to end after SIGTERM before SIGKILL.
pub const GRACE: Duration = Duration::from_secs(3);

/// Whether an environment block (`/proc/<pid>/environ`: `KEY=value` entries, each ended by a
/// NUL) holds `MARK=<mark>` exactly.
fn marked(environ: &[u8], mark: &str) -> bool {
    environ.split(|&b| b == 0).any(|entry| {
        entry
            .strip_prefix(MARK.as_bytes())
            .and_then(|rest| rest.strip_prefix(b"="))
            == Some(mark.as_bytes())
    })
}

/// Every live process but this one that carries `MARK=<mark>`, with its process group.
fn find(mark: &str) -> Vec<(u32, u32)> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| marked(&env, mark))
        })
        .filter_map(|pid| {
            let stat = parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?;
            (!stat.zombie).then_some((pid, stat.pgrp))
        })
        .collect()
}

/// Stops every process that carries `MARK=<mark>` (and its process group), waiting up to
/// [`GRACE`] after SIGTERM before SIGKILL. Returns the pids found, sorted. Blocks: call it before
/// the runtime starts.
pub fn end(mark: &str) -> Vec<u32> {
    let found = find(mark);
    if found.is_empty() {
        return Vec::new();
    }
    // SAFETY: getpgrp has no preconditions.
    let own_group = unsafe { libc::getpgrp() } as u32;
    let signal_all = |signal: i32, left: &[(u32, u32)]| {
        let groups: BTreeSet<u32> = left.iter().map(|&(_, g)| g).collect();
        for &group in &groups {
            // Never our own group (a leftover that started this agent, say): only that process.
            if group != own_group && group > 1 {
                // SAFETY: killpg has no memory-safety preconditions.
                unsafe { libc::killpg(group as libc::pid_t, signal) };
            }
        }
        for &(pid, _) in left {
            // SAFETY: as above.
            unsafe { libc::kill(pid as libc::pid_t, signal) };
        }
    };
    signal_all(libc::SIGTERM, &found);
    let deadline = Instant::now() + GRACE;
    let mut killed = false;
    // After SIGKILL, a moment for them to go (bounded: one stuck in the kernel stays).
    while Instant::now() < deadline + Duration::from_secs(1) {
        let left = find(mark);
        if left.is_empty() {
            break;
        }
        if !killed && Instant::now() >= deadline {
            signal_all(libc::SIGKILL, &left);
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut pids: Vec<u32> = found.into_iter().map(|(pid, _)| pid).collect();
    pids.sort_unstable();
    pids
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn the_mark_is_matched_exactly() {
        let env = b"PATH=/bin\0VIA_AGENT_DATA_DIR=/srv/data\0HOME=/root\0";
        assert!(marked(env, "/srv/data"));
        assert!(!marked(env, "/srv"));
        assert!(!marked(env, "/srv/data/more"));
        assert!(!marked(b"XVIA_AGENT_DATA_DIR=/srv/data\0", "/srv/data"));
        assert!(!marked(b"VIA_AGENT_DATA_DIRX=/srv/data\0", "/srv/data"));
        assert!(!marked(b"", "/srv/data"));
        // The last entry without its NUL, as a truncated read would give it.
        assert!(marked(b"A=1\0VIA_AGENT_DATA_DIR=/d", "/d"));
    }

    fn alive(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| parse_stat(&s))
            .is_some_and(|s| !s.zombie)
    }

    #[test]
    fn what_carries_the_mark_is_ended_with_its_group_and_nothing_else() {
        let mark = format!("/tmp/leftovers-test-{}", std::process::id());
        // A group whose leader is gone (as after the agent's death), its grandchild ignoring
        // SIGTERM; and an unmarked process beside it.
        let mut leader = std::process::Command::new("sh")
            .args(["-c", "trap '' TERM; sleep 60 >/dev/null & echo $!"])
            .env(MARK, &mark)
            .process_group(0)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = String::new();
        std::io::Read::read_to_string(&mut leader.stdout.take().unwrap(), &mut out).unwrap();
        leader.wait().unwrap();
        let grandchild: u32 = out.trim().parse().unwrap();
        let mut other = std::process::Command::new("sleep")
            .arg("60")
            .env(MARK, format!("{mark}-other"))
            .spawn()
            .unwrap();
        assert!(alive(grandchild));

        let started = Instant::now();
        assert_eq!(end(&mark), [grandchild]);
        assert!(!alive(grandchild), "the leftover outlived its end");
        // It ignored SIGTERM: killed after the grace.
        assert!(started.elapsed() >= GRACE, "{:?}", started.elapsed());
        assert!(alive(other.id()), "an unmarked process was ended");
        assert_eq!(end(&mark), Vec::<u32>::new());
        other.kill().unwrap();
        other.wait().unwrap();
    }
}

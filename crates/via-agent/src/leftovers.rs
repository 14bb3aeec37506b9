//! What an agent that died without stopping its processes left running. A child dies with the
//! agent (`PR_SET_PDEATHSIG`), but what the child started does not: after `kill -9` of the agent,
//! a shell's `sleep`, trunk's cargo or a leaf's nats-server would go on running, holding their
//! ports, and the next agent would start them a second time beside them.
//!
//! Every process an agent starts inherits [`MARK`] = [`run_mark`]`(its pid, its data directory)`.
//! The lock file of the data directory holds the pid of the agent that has it, and is emptied
//! when that agent ends by itself; a pid still there at the next start names an agent that was
//! killed, and whatever carries that run's mark is its leftover: its process group is stopped,
//! SIGTERM then SIGKILL after a grace. Processes that outlived a clean stop (a daemon that left
//! its group) carry another run's mark and are left alone, as are the new agent's own ancestors.
//! Linux only (`/proc`); processes of other users cannot be read, and are not the agent's.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::procfs::parse_stat;

/// The environment variable every managed process inherits: the run that started it.
pub const MARK: &str = "VIA_AGENT_RUN";

/// How long leftovers get to end after SIGTERM before SIGKILL.
pub const GRACE: Duration = Duration::from_secs(3);

/// The mark of the agent `pid` on data directory `dir`: `<pid>@<dir>`.
pub fn run_mark(pid: u32, dir: &str) -> String {
    format!("{pid}@{dir}")
}

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

/// This process and its ancestors, each with its process group: never leftovers, whatever they
/// carry (the agent may have been started from a shell that the killed one had started).
fn ancestors() -> BTreeMap<u32, u32> {
    let mut chain = BTreeMap::new();
    let mut pid = std::process::id();
    while pid > 1 && !chain.contains_key(&pid) {
        let Some(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| parse_stat(&s))
        else {
            break;
        };
        chain.insert(pid, stat.pgrp);
        pid = stat.ppid;
    }
    chain
}

/// Every live process, but `spared`, that carries `MARK=<mark>`, with its process group.
fn find(mark: &str, spared: &BTreeMap<u32, u32>) -> Vec<(u32, u32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| !spared.contains_key(pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| marked(&env, mark))
        })
        .filter_map(|pid| {
            let stat = parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?;
            (!stat.zombie).then_some((pid, stat.pgrp))
        })
        .collect()
}

/// What [`end`] found and how it went.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Ended {
    /// Every process found, sorted.
    pub found: Vec<u32>,
    /// Those still there after SIGKILL and a moment (stuck in the kernel), sorted.
    pub left: Vec<u32>,
}

/// Stops every process that carries `MARK=<mark>` (and its process group), but this one and its
/// ancestors, waiting up to [`GRACE`] after SIGTERM before SIGKILL. Blocks: call it before the
/// runtime starts.
pub fn end(mark: &str) -> Ended {
    let spared = ancestors();
    let found = find(mark, &spared);
    if found.is_empty() {
        return Ended::default();
    }
    // The groups of this process and its ancestors are never signalled as a whole.
    let spared_groups: BTreeSet<u32> = spared.values().copied().collect();
    let signal_all = |signal: i32, left: &[(u32, u32)]| {
        let groups: BTreeSet<u32> = left.iter().map(|&(_, g)| g).collect();
        for &group in &groups {
            if group > 1 && !spared_groups.contains(&group) {
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
    let mut left = found.clone();
    // After SIGKILL, a moment for them to go (bounded: one stuck in the kernel stays).
    while Instant::now() < deadline + Duration::from_secs(1) {
        left = find(mark, &spared);
        if left.is_empty() {
            break;
        }
        if !killed && Instant::now() >= deadline {
            signal_all(libc::SIGKILL, &left);
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let sorted = |list: Vec<(u32, u32)>| {
        let mut pids: Vec<u32> = list.into_iter().map(|(pid, _)| pid).collect();
        pids.sort_unstable();
        pids
    };
    Ended {
        found: sorted(found),
        left: sorted(left),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn the_mark_is_matched_exactly() {
        let env = b"PATH=/bin\0VIA_AGENT_RUN=7@/srv/data\0HOME=/root\0";
        assert!(marked(env, "7@/srv/data"));
        assert!(!marked(env, "7@/srv"));
        assert!(!marked(env, "77@/srv/data"));
        assert!(!marked(env, "7@/srv/data/more"));
        assert!(!marked(b"XVIA_AGENT_RUN=7@/srv/data\0", "7@/srv/data"));
        assert!(!marked(b"VIA_AGENT_RUNX=7@/srv/data\0", "7@/srv/data"));
        assert!(!marked(b"", "7@/srv/data"));
        // The last entry without its NUL, as a truncated read would give it.
        assert!(marked(b"A=1\0VIA_AGENT_RUN=7@/d", "7@/d"));
        assert_eq!(run_mark(7, "/d"), "7@/d");
    }

    #[test]
    fn this_process_and_its_parent_are_ancestors() {
        let chain = ancestors();
        assert!(chain.contains_key(&std::process::id()));
        // SAFETY: getppid has no preconditions.
        let parent = unsafe { libc::getppid() } as u32;
        assert!(parent <= 1 || chain.contains_key(&parent), "{chain:?}");
    }

    fn alive(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| parse_stat(&s))
            .is_some_and(|s| !s.zombie)
    }

    /// Waits until `pid` runs `command` and its environment, read after that, carries `mark`
    /// (an exec sets the name first and the environment last).
    fn exec_done(pid: u32, command: &str, mark: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let named = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim_end() == command);
            if named
                && std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| marked(&env, mark))
            {
                return;
            }
            assert!(Instant::now() < deadline, "{pid} never became {command}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn what_carries_the_mark_is_ended_with_its_group_and_nothing_else() {
        let mark = run_mark(1, &format!("/tmp/leftovers-test-{}", std::process::id()));
        // A group whose leader is gone (as after the agent's death), its grandchild ignoring
        // SIGTERM; and one of another run beside it.
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
            .env(MARK, format!("2{mark}"))
            .spawn()
            .unwrap();
        // `$!` is printed once the shell has forked, maybe before its child has become `sleep`;
        // in the middle of that exec its environment reads as empty, and it would not be found.
        exec_done(grandchild, "sleep", &mark);
        exec_done(other.id(), "sleep", &format!("2{mark}"));
        assert!(alive(grandchild));

        let started = Instant::now();
        let ended = end(&mark);
        assert_eq!(
            ended,
            Ended {
                found: vec![grandchild],
                left: vec![]
            }
        );
        assert!(!alive(grandchild), "the leftover outlived its end");
        // It ignored SIGTERM: killed after the grace.
        assert!(started.elapsed() >= GRACE, "{:?}", started.elapsed());
        assert!(alive(other.id()), "another run's process was ended");
        assert_eq!(end(&mark), Ended::default());
        other.kill().unwrap();
        other.wait().unwrap();
    }
}

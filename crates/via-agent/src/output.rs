//! Lossy, non-blocking output: the agent's stderr (its own messages and the lines of processes
//! with `echo`) and leaf log files. Lines go through a bounded channel to a thread that writes
//! them; when it falls behind (stderr not read, a slow disk) new lines are dropped. Never blocks
//! the runtime's thread, and never panics on a write error (EPIPE when stderr's reader is gone).

use std::io::Write;
use std::sync::mpsc::{sync_channel, Sender, SyncSender, TrySendError};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Lines a writer holds before it drops new ones.
pub const CAPACITY: usize = 1024;

enum Item {
    Line(Vec<u8>),
    /// Answered once every line before it is written.
    Flush(Sender<()>),
}

/// A destination written by a thread of its own (see the module docs).
pub struct LineWriter {
    tx: SyncSender<Item>,
}

impl LineWriter {
    /// Starts the writer thread; it opens its destination with `open` (so that opening a file does
    /// not block the caller either) and ends when the `LineWriter` is dropped. If `open` fails,
    /// every line is dropped.
    pub fn spawn<W: Write>(open: impl FnOnce() -> std::io::Result<W> + Send + 'static) -> Self {
        let (tx, rx) = sync_channel::<Item>(CAPACITY);
        let spawned = std::thread::Builder::new()
            .name("via-agent-output".into())
            .spawn(move || {
                let Ok(mut out) = open() else { return };
                for item in rx {
                    match item {
                        Item::Line(bytes) => {
                            let _ = out.write_all(&bytes);
                        }
                        Item::Flush(done) => {
                            let _ = out.flush();
                            let _ = done.send(());
                        }
                    }
                }
            });
        // Without its thread the receiver is dropped: every line is then dropped, as documented.
        drop(spawned);
        LineWriter { tx }
    }

    /// Queues `text` and a newline; drops it if the writer is behind. Returns whether it was queued.
    pub fn line(&self, text: &str) -> bool {
        let mut bytes = Vec::with_capacity(text.len() + 1);
        bytes.extend_from_slice(text.as_bytes());
        bytes.push(b'\n');
        self.tx.try_send(Item::Line(bytes)).is_ok()
    }

    /// Waits, at most `within`, until every line queued so far is written. Blocks: call it off
    /// the runtime (at exit).
    pub fn flush(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let (done, written) = std::sync::mpsc::channel();
        let mut item = Item::Flush(done);
        loop {
            match self.tx.try_send(item) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                    item = back;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(_) => return false,
            }
        }
        written
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
    }
}

/// The agent's stderr.
pub fn stderr() -> &'static LineWriter {
    static STDERR: OnceLock<LineWriter> = OnceLock::new();
    STDERR.get_or_init(|| LineWriter::spawn(|| Ok(std::io::stderr())))
}

/// `eprintln!` for the agent's messages, through [`stderr`]: lossy, never blocking, never
/// panicking.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::output::stderr().line(&format!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Condvar, Mutex};

    /// A destination that blocks every write until opened, then records.
    #[derive(Clone, Default)]
    struct Gate {
        open: Arc<(Mutex<bool>, Condvar)>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let (lock, cvar) = &*self.open;
            let _open = cvar.wait_while(lock.lock().unwrap(), |o| !*o).unwrap();
            self.written.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_destination_drops_lines_instead_of_blocking() {
        let gate = Gate::default();
        let writer = LineWriter::spawn({
            let gate = gate.clone();
            move || Ok(gate)
        });
        let t = Instant::now();
        // The thread holds one line (blocked writing it), the channel CAPACITY more.
        let queued = (0..CAPACITY * 3)
            .filter(|i| writer.line(&i.to_string()))
            .count();
        assert!(t.elapsed() < Duration::from_secs(1));
        assert!((CAPACITY..=CAPACITY + 1).contains(&queued), "{queued}");
        assert!(!writer.flush(Duration::from_millis(50)));
        *gate.open.0.lock().unwrap() = true;
        gate.open.1.notify_all();
        assert!(writer.flush(Duration::from_secs(5)));
        let written = String::from_utf8(gate.written.lock().unwrap().clone()).unwrap();
        assert_eq!(written.lines().count(), queued);
        assert!(written.starts_with("0\n1\n"));
    }

    #[test]
    fn write_errors_are_ignored() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
        }
        let writer = LineWriter::spawn(|| Ok(Broken));
        assert!(writer.line("x"));
        assert!(writer.flush(Duration::from_secs(5)));
        let unopened = LineWriter::spawn(|| Err::<Broken, _>(std::io::ErrorKind::NotFound.into()));
        assert!(!unopened.flush(Duration::from_secs(5)));
    }
}

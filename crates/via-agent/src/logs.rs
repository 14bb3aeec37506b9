//! Output of managed processes: bytes cut into bounded lines, and the ring of the last lines.

use std::collections::VecDeque;

/// Longest line kept, in bytes; the rest of a longer line is dropped (a process that prints
/// megabytes without a newline must not grow the agent).
pub const MAX_LINE: usize = 4096;

/// Lines kept per process: as many as a `logs` request may ask for.
pub const RING_LINES: usize = process_control::MAX_LOG_LINES;

/// Cuts a byte stream into lines (without their `\n` or `\r\n`), each at most [`MAX_LINE`] bytes.
#[derive(Debug, Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
    /// The current line already went out cut at MAX_LINE: skip up to its newline.
    skipping: bool,
}

impl LineSplitter {
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<String>) {
        while !data.is_empty() {
            let newline = memchr(data);
            let (chunk, ends_line) = match newline {
                Some(i) => (&data[..i], true),
                None => (data, false),
            };
            if !self.skipping {
                let room = MAX_LINE - self.buf.len();
                self.buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if chunk.len() >= room && !ends_line || chunk.len() > room {
                    out.push(take_line(&mut self.buf));
                    self.skipping = !ends_line;
                } else if ends_line {
                    out.push(take_line(&mut self.buf));
                }
            } else if ends_line {
                self.skipping = false;
            }
            data = match newline {
                Some(i) => &data[i + 1..],
                None => &[],
            };
        }
    }

    /// The unterminated last line, at end of stream.
    pub fn finish(&mut self) -> Option<String> {
        (!self.buf.is_empty()).then(|| take_line(&mut self.buf))
    }
}

fn memchr(data: &[u8]) -> Option<usize> {
    data.iter().position(|&b| b == b'\n')
}

fn take_line(buf: &mut Vec<u8>) -> String {
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    let line = String::from_utf8_lossy(buf).into_owned();
    buf.clear();
    line
}

/// The last `cap` items, oldest first.
#[derive(Debug)]
pub struct Ring<T> {
    items: VecDeque<T>,
    cap: usize,
}

impl<T: Clone> Ring<T> {
    pub fn new(cap: usize) -> Self {
        Ring {
            items: VecDeque::with_capacity(cap.min(64)),
            cap,
        }
    }

    pub fn push(&mut self, item: T) {
        if self.items.len() == self.cap {
            self.items.pop_front();
        }
        self.items.push_back(item);
    }

    /// The newest `n`, oldest first.
    pub fn last(&self, n: usize) -> Vec<T> {
        let skip = self.items.len().saturating_sub(n);
        self.items.iter().skip(skip).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<String> {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, &mut out);
        }
        out.extend(s.finish());
        out
    }

    #[test]
    fn lines_across_chunks_with_crlf_and_bad_utf8() {
        assert_eq!(
            split(&[b"he", b"llo\r\nwor", b"ld\n\nlast"]),
            ["hello", "world", "", "last"]
        );
        assert_eq!(split(&[b"a\xffb\n"]), ["a\u{fffd}b"]);
    }

    #[test]
    fn long_lines_are_cut_and_the_rest_dropped() {
        let long = vec![b'x'; MAX_LINE * 3 + 5];
        let mut input = long.clone();
        input.extend_from_slice(b"\nnext\n");
        let out = split(&[&input[..100], &input[100..]]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), MAX_LINE);
        assert_eq!(out[1], "next");
        // Exactly MAX_LINE bytes then a newline is one whole line.
        let mut exact = vec![b'y'; MAX_LINE];
        exact.push(b'\n');
        exact.extend_from_slice(b"z\n");
        let out = split(&[&exact]);
        assert_eq!(
            out,
            [String::from_utf8(vec![b'y'; MAX_LINE]).unwrap(), "z".into()]
        );
    }

    #[test]
    fn ring_keeps_the_newest() {
        let mut r = Ring::new(3);
        for i in 0..5 {
            r.push(i);
        }
        assert_eq!(r.last(10), [2, 3, 4]);
        assert_eq!(r.last(2), [3, 4]);
        assert_eq!(r.last(0), Vec::<i32>::new());
    }
}

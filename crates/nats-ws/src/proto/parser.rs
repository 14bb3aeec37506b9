//! A streaming parser for what the server sends.
//!
//! Over WebSocket, frame boundaries mean nothing: a frame may hold many operations or a fraction of
//! one. [`Parser::feed`] appends whatever arrived; [`Parser::next_op`] returns complete operations one
//! at a time and `Ok(None)` when it needs more bytes. Subjects and payloads are handed out as slices of
//! the buffer (`Bytes`), so a message costs no copy beyond the one from the socket into the buffer.
//!
//! Garbage is an error, never a panic; after an error the parser must be [reset](Parser::reset).

use bytes::{Buf, Bytes, BytesMut};

use super::info::ServerInfo;
use crate::error::ParseError;
use crate::subject::Subject;

/// A control line may be at most this long (INFO of a large cluster included).
pub const MAX_CONTROL_LINE: usize = 1024 * 1024;
/// The largest message the parser accepts from a server that allows less (nats-server's default
/// `max_pending`, which a `max_payload` may not exceed unless it is raised too); a server whose
/// INFO allows more is trusted with up to that ([`Parser::allow_max_payload`]). A size beyond it is
/// garbage, not a reason to reserve that much memory.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;
/// nats-server's `max_payload` is an `int32`: the most any of its INFOs can allow. With the
/// control line's 1 MiB, a message's end stays far from `usize::MAX` on 32-bit targets too.
pub const MAX_SERVER_PAYLOAD: usize = i32::MAX as usize;
/// Sizes are decimal numbers of at most this many digits.
const MAX_SIZE_DIGITS: usize = 15;

/// One operation from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerOp {
    Info(Box<ServerInfo>),
    Msg {
        sid: u64,
        subject: Subject,
        reply: Option<Subject>,
        payload: Bytes,
    },
    /// A message with headers; `headers` is the raw block (`NATS/1.0…\r\n\r\n`).
    HMsg {
        sid: u64,
        subject: Subject,
        reply: Option<Subject>,
        headers: Bytes,
        payload: Bytes,
    },
    Ping,
    Pong,
    Ok,
    Err(String),
}

/// The control line of a message whose payload has not fully arrived yet.
#[derive(Debug)]
struct PendingMsg {
    sid: u64,
    subject: Subject,
    reply: Option<Subject>,
    header_len: Option<usize>,
    total_len: usize,
    /// Its subject or reply was not UTF-8 (see [`Parser::take_lossy`]).
    lossy: bool,
}

#[derive(Debug, Default)]
pub struct Parser {
    buf: BytesMut,
    pending: Option<PendingMsg>,
    /// The `max_payload` of this connection's INFO; messages up to the larger of it and
    /// [`MAX_MESSAGE_SIZE`] are accepted.
    max_payload: usize,
    /// The last message returned had a subject or reply that was not UTF-8.
    lossy: bool,
}

const OPS: [&[u8]; 7] = [b"MSG", b"HMSG", b"PING", b"PONG", b"+OK", b"-ERR", b"INFO"];

impl Parser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes received from the server.
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Like [`Parser::feed`], taking ownership: when nothing is buffered (the usual case, a frame
    /// of whole operations), the frame itself becomes the buffer that messages are sliced from,
    /// with no copy.
    pub fn feed_owned(&mut self, data: Vec<u8>) {
        if self.buf.is_empty() {
            self.buf = BytesMut::from(Bytes::from(data));
        } else {
            self.buf.extend_from_slice(&data);
        }
    }

    /// Forgets everything buffered (after an error, or when the connection is replaced), and the
    /// server's `max_payload`: the next connection's INFO says its own.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.pending = None;
        self.max_payload = 0;
        self.lossy = false;
    }

    /// Accepts messages up to `max_payload` bytes (headers and payload), as the server's INFO
    /// allows, when that is more than [`MAX_MESSAGE_SIZE`]; at most [`MAX_SERVER_PAYLOAD`], the
    /// most nats-server can allow (a claim of more is not trusted: sizes near `usize::MAX`
    /// would overflow the parser's arithmetic).
    pub fn allow_max_payload(&mut self, max_payload: usize) {
        self.max_payload = max_payload.min(MAX_SERVER_PAYLOAD);
    }

    /// Whether the message [`Parser::next_op`] returned last had a subject or reply subject that
    /// was not UTF-8, delivered with U+FFFD for its bad bytes (nats-server checks nothing of a
    /// subject but its separators, so any client may publish one: no reason to drop the
    /// connection and every subscription on it). Reading it clears it.
    pub fn take_lossy(&mut self) -> bool {
        std::mem::take(&mut self.lossy)
    }

    /// Bytes buffered and not yet returned as operations.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete operation, `Ok(None)` if more bytes are needed.
    pub fn next_op(&mut self) -> Result<Option<ServerOp>, ParseError> {
        if let Some(pending) = &self.pending {
            let needed = pending.total_len + 2;
            if self.buf.len() < needed {
                // Reserve once for a large payload instead of growing step by step, up to
                // MAX_MESSAGE_SIZE: beyond, the buffer grows as the bytes come, so a size the
                // server announces and never sends costs nothing.
                let missing = needed - self.buf.len();
                self.buf.reserve(missing.min(MAX_MESSAGE_SIZE));
                return Ok(None);
            }
            let pending = self.pending.take().expect("checked above");
            let data = self.buf.split_to(needed).freeze();
            self.lossy = pending.lossy;
            return message(pending, data, 0).map(Some);
        }

        self.check_op_prefix()?;
        // A line is too long whether or not its end has arrived, so that how the bytes were cut
        // into frames never decides it.
        let Some(lf) = memchr::memchr(b'\n', &self.buf) else {
            if self.buf.len() > MAX_CONTROL_LINE {
                return Err(ParseError::LineTooLong(MAX_CONTROL_LINE));
            }
            return Ok(None);
        };
        if lf > MAX_CONTROL_LINE {
            return Err(ParseError::LineTooLong(MAX_CONTROL_LINE));
        }
        if lf == 0 || self.buf[lf - 1] != b'\r' {
            return Err(ParseError::BadLineEnd(snippet(&self.buf[..lf])));
        }
        let line = &self.buf[..lf - 1];
        let op_end = line.iter().position(|&b| is_space(b)).unwrap_or(line.len());
        let with_headers = match &line[..op_end] {
            op if op.eq_ignore_ascii_case(b"MSG") => false,
            op if op.eq_ignore_ascii_case(b"HMSG") => true,
            _ => {
                let line = self.buf.split_to(lf + 1).freeze().slice(..lf - 1);
                return parse_line(line, op_end);
            }
        };
        let args = msg_args(line, op_end, with_headers, self.max_payload)?;
        let start = lf + 1;
        let end = start + args.total_len;
        // With the whole message here, one slice of the buffer for it, the subjects cut from it
        // and the payload the rest of it (each `Bytes` made is a reference count to raise);
        // else the control line's, kept until the payload is in.
        let whole = self.buf.len() >= end + 2;
        let data = self
            .buf
            .split_to(if whole { end + 2 } else { start })
            .freeze();
        let mut lossy = false;
        let pending = PendingMsg {
            sid: args.sid,
            subject: subject_of(&data, args.subject, &mut lossy),
            reply: args.reply.map(|r| subject_of(&data, r, &mut lossy)),
            header_len: args.header_len,
            total_len: args.total_len,
            lossy,
        };
        if whole {
            self.lossy = lossy;
            return message(pending, data, start).map(Some);
        }
        self.pending = Some(pending);
        self.next_op()
    }

    /// Fails fast on bytes that cannot start any operation, without waiting for a line end.
    fn check_op_prefix(&self) -> Result<(), ParseError> {
        let head = &self.buf[..self.buf.len().min(5)];
        if head.is_empty() {
            return Ok(());
        }
        let plausible = OPS.iter().any(|op| {
            let n = head.len().min(op.len());
            head[..n].eq_ignore_ascii_case(&op[..n])
                && (head.len() <= op.len() || is_space(head[op.len()]) || head[op.len()] == b'\r')
        });
        if plausible {
            Ok(())
        } else {
            Err(ParseError::UnknownOp(snippet(head)))
        }
    }
}

/// The arguments of a `MSG` / `HMSG` control line: where its subjects are in the line, and its
/// numbers.
struct MsgArgs {
    sid: u64,
    subject: (usize, usize),
    reply: Option<(usize, usize)>,
    header_len: Option<usize>,
    total_len: usize,
}

/// Reads `subject sid [reply] [#header] #total` after the op name (`line[..op_end]`), without
/// making a `Bytes` of anything.
fn msg_args(
    line: &[u8],
    op_end: usize,
    with_headers: bool,
    max_payload: usize,
) -> Result<MsgArgs, ParseError> {
    let op = if with_headers { "HMSG" } else { "MSG" };
    let bad = |reason| ParseError::BadArgs {
        op,
        line: snippet(line),
        reason,
    };
    // Up to 5 arguments, found as ranges of the line.
    let mut args = [(0usize, 0usize); 5];
    let mut count = 0;
    let mut i = op_end;
    loop {
        while i < line.len() && is_space(line[i]) {
            i += 1;
        }
        if i == line.len() {
            break;
        }
        if count == args.len() {
            return Err(bad("too many arguments"));
        }
        let start = i;
        while i < line.len() && !is_space(line[i]) {
            i += 1;
        }
        args[count] = (start, i);
        count += 1;
    }
    let fixed = if with_headers { 4 } else { 3 };
    if count != fixed && count != fixed + 1 {
        return Err(bad("wrong number of arguments"));
    }
    let has_reply = count == fixed + 1;
    let arg = |k: usize| &line[args[k].0..args[k].1];
    let (reply, sizes) = if has_reply {
        (Some(args[2]), [arg(3), arg(4)])
    } else {
        (None, [arg(2), arg(3)])
    };
    let sid = parse_number(arg(1)).ok_or_else(|| bad("sid is not a number"))?;
    let (header_len, total_len) = if with_headers {
        let h = parse_size(sizes[0]).ok_or_else(|| bad("header size is not a number"))?;
        let t = parse_size(sizes[1]).ok_or_else(|| bad("total size is not a number"))?;
        if h > t {
            return Err(bad("header size larger than total size"));
        }
        (Some(h), t)
    } else {
        (
            None,
            parse_size(sizes[0]).ok_or_else(|| bad("size is not a number"))?,
        )
    };
    let max = MAX_MESSAGE_SIZE.max(max_payload);
    if total_len > max {
        return Err(ParseError::TooLarge {
            size: total_len,
            max,
        });
    }
    Ok(MsgArgs {
        sid,
        subject: args[0],
        reply,
        header_len,
        total_len,
    })
}

/// The message of `pending` from `data`: its payload at `start`, then CRLF (checked).
fn message(pending: PendingMsg, mut payload: Bytes, start: usize) -> Result<ServerOp, ParseError> {
    let end = start + pending.total_len;
    if &payload[end..] != b"\r\n" {
        return Err(ParseError::BadPayloadEnd);
    }
    payload.truncate(end);
    payload.advance(start);
    Ok(match pending.header_len {
        None => ServerOp::Msg {
            sid: pending.sid,
            subject: pending.subject,
            reply: pending.reply,
            payload,
        },
        Some(header_len) => ServerOp::HMsg {
            sid: pending.sid,
            subject: pending.subject,
            reply: pending.reply,
            headers: payload.split_to(header_len),
            payload,
        },
    })
}

/// A subject at `range` of `bytes` (which start with its control line); `lossy` set if it was not
/// UTF-8.
fn subject_of(bytes: &Bytes, (start, end): (usize, usize), lossy: &mut bool) -> Subject {
    let (subject, replaced) = Subject::from_utf8_lossy(bytes.slice(start..end));
    *lossy |= replaced;
    subject
}

/// Every operation but `MSG` and `HMSG`: `line` without its line end, its op name `line[..op_end]`.
fn parse_line(line: Bytes, op_end: usize) -> Result<Option<ServerOp>, ParseError> {
    let op = &line[..op_end];
    let rest = &line[op_end..];
    let bare = |what: ServerOp| {
        if rest.iter().all(|&b| is_space(b)) {
            Ok(Some(what))
        } else {
            Err(ParseError::UnknownOp(snippet(&line)))
        }
    };
    if op.eq_ignore_ascii_case(b"PING") {
        bare(ServerOp::Ping)
    } else if op.eq_ignore_ascii_case(b"PONG") {
        bare(ServerOp::Pong)
    } else if op.eq_ignore_ascii_case(b"+OK") {
        bare(ServerOp::Ok)
    } else if op.eq_ignore_ascii_case(b"-ERR") {
        let text = String::from_utf8_lossy(rest);
        let text = text.trim().trim_matches('\'');
        Ok(Some(ServerOp::Err(text.to_owned())))
    } else if op.eq_ignore_ascii_case(b"INFO") {
        let info = ServerInfo::parse(rest).map_err(|e| ParseError::BadInfo(e.to_owned()))?;
        Ok(Some(ServerOp::Info(Box::new(info))))
    } else {
        Err(ParseError::UnknownOp(snippet(&line)))
    }
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// A decimal number of at most [`MAX_SIZE_DIGITS`] digits. Computed in `u64`, which holds 15 digits on
/// every target: in a 32-bit `usize` (wasm32) they would overflow.
fn parse_number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > MAX_SIZE_DIGITS {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        d.is_ascii_digit().then(|| acc * 10 + u64::from(d - b'0'))
    })
}

/// A size; one that does not fit in `usize` saturates, to be refused as larger than any message.
fn parse_size(digits: &[u8]) -> Option<usize> {
    parse_number(digits).map(|n| usize::try_from(n).unwrap_or(usize::MAX))
}

/// A short excerpt of bad input for an error message (whose text escapes what is not printable).
fn snippet(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(40)];
    String::from_utf8_lossy(cut).into_owned()
}

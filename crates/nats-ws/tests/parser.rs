#![cfg(not(target_arch = "wasm32"))]
//! The streaming parser against the acceptance scenarios of the official clients: any split of the
//! input gives the same operations, garbage is an error (never a panic), and large back-to-back
//! messages come out intact.

use bytes::Bytes;
use nats_ws::proto::parser::MAX_CONTROL_LINE;
use nats_ws::proto::{Parser, ServerOp};
use nats_ws::{HeaderMap, ParseError, Subject};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};

// ---------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------

/// Every complete operation buffered, stopping at the first error.
fn drain(p: &mut Parser) -> Result<Vec<ServerOp>, ParseError> {
    let mut ops = Vec::new();
    while let Some(op) = p.next_op()? {
        ops.push(op);
    }
    Ok(ops)
}

/// Feeds the chunks one after the other, draining after each, and expects no error and nothing left.
fn parse_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<ServerOp> {
    let mut p = Parser::new();
    let mut ops = Vec::new();
    for chunk in chunks {
        p.feed(chunk);
        match drain(&mut p) {
            Ok(more) => ops.extend(more),
            Err(e) => panic!("unexpected parse error {e:?} after {} ops", ops.len()),
        }
    }
    assert_eq!(p.next_op(), Ok(None), "nothing more to parse");
    assert_eq!(p.buffered(), 0, "every byte consumed");
    ops
}

fn parse_whole(bytes: &[u8]) -> Vec<ServerOp> {
    parse_chunks([bytes])
}

/// Splits `bytes` at the given (sorted, in range) positions.
fn split_at<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut chunks = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for &cut in cuts {
        chunks.push(&bytes[start..cut]);
        start = cut;
    }
    chunks.push(&bytes[start..]);
    chunks
}

/// Splits `bytes` into chunks whose sizes cycle through `sizes` (each at least 1).
fn chunked<'a>(bytes: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut chunks = Vec::new();
    let mut rest = bytes;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(n);
        chunks.push(chunk);
        rest = tail;
        i += 1;
    }
    chunks
}

/// The first error the parser reports for `bytes` fed whole, panicking if there is none.
fn first_error(bytes: &[u8]) -> ParseError {
    first_error_of(&mut Parser::new(), bytes)
}

/// Feeds `bytes` to `p` and expects an error before they run out.
fn first_error_of(p: &mut Parser, bytes: &[u8]) -> ParseError {
    p.feed(bytes);
    match drain(p) {
        Err(e) => e,
        Ok(ops) => panic!(
            "expected an error for {:?}, got {ops:?}",
            String::from_utf8_lossy(bytes)
        ),
    }
}

fn msg(subject: &str, sid: u64, reply: Option<&str>, payload: &[u8]) -> ServerOp {
    ServerOp::Msg {
        sid,
        subject: Subject::from(subject),
        reply: reply.map(Subject::from),
        payload: Bytes::copy_from_slice(payload),
    }
}

fn hmsg(subject: &str, sid: u64, reply: Option<&str>, headers: &[u8], payload: &[u8]) -> ServerOp {
    ServerOp::HMsg {
        sid,
        subject: Subject::from(subject),
        reply: reply.map(Subject::from),
        headers: Bytes::copy_from_slice(headers),
        payload: Bytes::copy_from_slice(payload),
    }
}

fn hmsg_line(
    subject: &str,
    sid: u64,
    reply: Option<&str>,
    headers: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let reply = reply.map(|r| format!("{r} ")).unwrap_or_default();
    let mut out = format!(
        "HMSG {subject} {sid} {reply}{} {}\r\n",
        headers.len(),
        headers.len() + payload.len()
    )
    .into_bytes();
    out.extend_from_slice(headers);
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
    out
}

// ---------------------------------------------------------------------------------------------------
// 1. Scenarios
// ---------------------------------------------------------------------------------------------------

#[test]
fn ping_fed_one_byte_at_a_time() {
    let mut p = Parser::new();
    let bytes = b"PING\r\n";
    for (i, b) in bytes.iter().enumerate() {
        p.feed(std::slice::from_ref(b));
        let op = p.next_op().expect("no error");
        if i + 1 < bytes.len() {
            assert_eq!(op, None, "incomplete after {} bytes", i + 1);
        } else {
            assert_eq!(op, Some(ServerOp::Ping));
        }
    }
    assert_eq!(p.next_op(), Ok(None));
    assert_eq!(p.buffered(), 0);
}

#[test]
fn pong_and_ok() {
    assert_eq!(parse_whole(b"PONG\r\n"), [ServerOp::Pong]);
    assert_eq!(parse_whole(b"+OK\r\n"), [ServerOp::Ok]);
    // One byte at a time, too.
    assert_eq!(
        parse_chunks(chunked(b"+OK\r\nPONG\r\n", &[1])),
        [ServerOp::Ok, ServerOp::Pong]
    );
    // Trailing blanks before the line end are tolerated.
    assert_eq!(parse_whole(b"PONG \t\r\n"), [ServerOp::Pong]);
}

#[test]
fn op_names_are_case_insensitive() {
    assert_eq!(parse_whole(b"ping\r\n"), [ServerOp::Ping]);
    assert_eq!(parse_whole(b"Ping\r\n"), [ServerOp::Ping]);
    assert_eq!(parse_whole(b"pOnG\r\n"), [ServerOp::Pong]);
    assert_eq!(parse_whole(b"+ok\r\n"), [ServerOp::Ok]);
    assert_eq!(
        parse_whole(b"-err 'x'\r\n"),
        [ServerOp::Err("x".to_owned())]
    );
    assert_eq!(
        parse_whole(b"Msg a 1 3\r\nfoo\r\n"),
        [msg("a", 1, None, b"foo")]
    );
    assert_eq!(
        parse_whole(b"msg a 1 3\r\nfoo\r\n"),
        [msg("a", 1, None, b"foo")]
    );
    let headers = b"NATS/1.0\r\n\r\n";
    let mut bytes = hmsg_line("a", 1, None, headers, b"xy");
    bytes[..4].copy_from_slice(b"hMsG");
    assert_eq!(parse_whole(&bytes), [hmsg("a", 1, None, headers, b"xy")]);
    match parse_whole(b"info {\"server_name\":\"n\"}\r\n").as_slice() {
        [ServerOp::Info(info)] => assert_eq!(info.server_name, "n"),
        other => panic!("expected INFO, got {other:?}"),
    }
}

#[test]
fn err_split_into_chunks_keeps_its_text() {
    let bytes = b"-ERR 'Authorization Violation'\r\n";
    let expected = [ServerOp::Err("Authorization Violation".to_owned())];
    assert_eq!(parse_whole(bytes), expected);
    for cut in 0..=bytes.len() {
        assert_eq!(
            parse_chunks(split_at(bytes, &[cut])),
            expected,
            "cut at {cut}"
        );
    }
    for size in 1..=bytes.len() {
        assert_eq!(
            parse_chunks(chunked(bytes, &[size])),
            expected,
            "chunks of {size}"
        );
    }
    // Quotes inside the text (permission violations name the subject) are kept.
    assert_eq!(
        parse_whole(b"-ERR 'Permissions Violation for Publish to \"x.y\"'\r\n"),
        [ServerOp::Err(
            "Permissions Violation for Publish to \"x.y\"".to_owned()
        )]
    );
}

const INFO_LINE: &[u8] =
    b"INFO {\"server_id\":\"NCXYZ\",\"server_name\":\"n1\",\"version\":\"2.10.22\",\
\"proto\":1,\"go\":\"go1.22.8\",\"host\":\"0.0.0.0\",\"port\":4222,\"headers\":true,\
\"max_payload\":1048576,\"jetstream\":true,\"client_id\":7,\"client_ip\":\"127.0.0.1\",\
\"nonce\":\"abc\",\"cluster\":\"c1\",\"connect_urls\":[\"10.0.0.1:4222\",\"10.0.0.2:4222\"],\
\"ldm\":true,\"xkey\":\"an unknown field\",\"nested\":{\"a\":[1,2]}}\r\n";

#[test]
fn info_split_at_every_byte_parses_the_same() {
    let whole = parse_whole(INFO_LINE);
    let [ServerOp::Info(info)] = whole.as_slice() else {
        panic!("expected one INFO, got {whole:?}");
    };
    assert_eq!(info.server_id, "NCXYZ");
    assert_eq!(info.server_name, "n1");
    assert_eq!(info.version, "2.10.22");
    assert_eq!(info.proto, 1);
    assert_eq!(info.port, 4222);
    assert_eq!(info.max_payload, 1_048_576);
    assert!(info.headers);
    assert!(info.jetstream);
    assert_eq!(info.client_id, 7);
    assert_eq!(info.nonce.as_deref(), Some("abc"));
    assert_eq!(info.cluster.as_deref(), Some("c1"));
    assert_eq!(info.connect_urls, ["10.0.0.1:4222", "10.0.0.2:4222"]);
    assert!(info.lame_duck_mode, "ldm");
    assert!(!info.auth_required, "missing fields default");
    assert_eq!(info.domain, None);

    for cut in 0..=INFO_LINE.len() {
        assert_eq!(
            parse_chunks(split_at(INFO_LINE, &[cut])),
            whole,
            "cut at {cut}"
        );
    }
    assert_eq!(
        parse_chunks(chunked(INFO_LINE, &[1])),
        whole,
        "byte at a time"
    );

    // An INFO with only a few fields, as a server sends when connect_urls change.
    match parse_whole(b"INFO {\"connect_urls\":[],\"ldm\":false}\r\n").as_slice() {
        [ServerOp::Info(info)] => {
            assert!(info.connect_urls.is_empty());
            assert!(!info.lame_duck_mode);
            assert_eq!(info.max_payload, 0);
        }
        other => panic!("expected INFO, got {other:?}"),
    }
}

#[test]
fn msg_split_at_every_byte_and_every_pair() {
    let bytes = b"MSG a 1 3\r\nfoo\r\n";
    let expected = [msg("a", 1, None, b"foo")];
    assert_eq!(parse_whole(bytes), expected);
    let n = bytes.len();
    for i in 0..=n {
        assert_eq!(parse_chunks(split_at(bytes, &[i])), expected, "cut at {i}");
        for j in i..=n {
            assert_eq!(
                parse_chunks(split_at(bytes, &[i, j])),
                expected,
                "cuts at {i} and {j}"
            );
        }
    }
    // The fields, spelled out.
    let [ServerOp::Msg {
        sid,
        subject,
        reply,
        payload,
    }] = &parse_whole(bytes)[..]
    else {
        panic!("expected one MSG");
    };
    assert_eq!(*sid, 1);
    assert_eq!(subject.as_str(), "a");
    assert_eq!(*reply, None);
    assert_eq!(&payload[..], b"foo");
}

#[test]
fn msg_incomplete_payload_waits() {
    let mut p = Parser::new();
    p.feed(b"MSG a 1 3\r\nfo");
    assert_eq!(p.next_op(), Ok(None));
    p.feed(b"o");
    assert_eq!(p.next_op(), Ok(None));
    p.feed(b"\r");
    assert_eq!(p.next_op(), Ok(None));
    p.feed(b"\n");
    assert_eq!(p.next_op(), Ok(Some(msg("a", 1, None, b"foo"))));
    assert_eq!(p.next_op(), Ok(None));
}

#[test]
fn msg_with_reply() {
    let bytes = b"MSG foo.bar 9 _INBOX.abc.1 5\r\nhello\r\n";
    let expected = [msg("foo.bar", 9, Some("_INBOX.abc.1"), b"hello")];
    assert_eq!(parse_whole(bytes), expected);
    for cut in 0..=bytes.len() {
        assert_eq!(
            parse_chunks(split_at(bytes, &[cut])),
            expected,
            "cut at {cut}"
        );
    }
    // Large sid, up to 15 digits.
    assert_eq!(
        parse_whole(b"MSG x 999999999999999 r 1\r\nz\r\n"),
        [msg("x", 999_999_999_999_999, Some("r"), b"z")]
    );
}

#[test]
fn payload_may_contain_crlf_and_op_names() {
    let payload = b"\r\nMSG a 1 3\r\nPING\r\n\n\r";
    let mut bytes = format!("MSG a 1 {}\r\n", payload.len()).into_bytes();
    bytes.extend_from_slice(payload);
    bytes.extend_from_slice(b"\r\nPING\r\n");
    let expected = [msg("a", 1, None, payload), ServerOp::Ping];
    assert_eq!(parse_whole(&bytes), expected);
    for cut in 0..=bytes.len() {
        assert_eq!(
            parse_chunks(split_at(&bytes, &[cut])),
            expected,
            "cut at {cut}"
        );
    }
}

#[test]
fn hmsg_split_everywhere() {
    let headers = b"NATS/1.0\r\nNats-Msg-Id: abc\r\nX-Multi: 1\r\nX-Multi: 2\r\n\r\n";
    let payload = b"hello\r\nworld";
    let bytes = hmsg_line("orders.new", 42, Some("_INBOX.r"), headers, payload);
    assert!(bytes.starts_with(b"HMSG orders.new 42 _INBOX.r 54 66\r\n"));
    let expected = [hmsg("orders.new", 42, Some("_INBOX.r"), headers, payload)];
    assert_eq!(parse_whole(&bytes), expected);
    let n = bytes.len();
    for i in 0..=n {
        assert_eq!(parse_chunks(split_at(&bytes, &[i])), expected, "cut at {i}");
    }
    for i in (0..=n).step_by(3) {
        for j in (i..=n).step_by(5) {
            assert_eq!(
                parse_chunks(split_at(&bytes, &[i, j])),
                expected,
                "cuts at {i} and {j}"
            );
        }
    }

    let [ServerOp::HMsg {
        sid,
        subject,
        reply,
        headers: got_headers,
        payload: got_payload,
    }] = &parse_whole(&bytes)[..]
    else {
        panic!("expected one HMSG");
    };
    assert_eq!(*sid, 42);
    assert_eq!(subject.as_str(), "orders.new");
    assert_eq!(reply.as_ref().map(Subject::as_str), Some("_INBOX.r"));
    assert_eq!(&got_payload[..], payload);
    assert_eq!(&got_headers[..], headers);
    let map = HeaderMap::parse(got_headers).expect("header block parses");
    assert_eq!(map.status(), None);
    assert_eq!(map.get("Nats-Msg-Id"), Some("abc"));
    assert_eq!(map.get("nats-msg-id"), Some("abc"));
    assert_eq!(map.get_all("X-Multi").collect::<Vec<_>>(), ["1", "2"]);
    assert_eq!(map.len(), 3);
}

#[test]
fn zero_length_payloads() {
    assert_eq!(parse_whole(b"MSG a 1 0\r\n\r\n"), [msg("a", 1, None, b"")]);
    assert_eq!(
        parse_whole(b"MSG a 1 r 0\r\n\r\nPONG\r\n"),
        [msg("a", 1, Some("r"), b""), ServerOp::Pong]
    );

    // No responders: a status header and nothing else.
    let headers = b"NATS/1.0 503\r\n\r\n";
    let bytes = hmsg_line("_INBOX.x", 3, None, headers, b"");
    assert!(bytes.starts_with(b"HMSG _INBOX.x 3 16 16\r\n"));
    let expected = [hmsg("_INBOX.x", 3, None, headers, b"")];
    for cut in 0..=bytes.len() {
        assert_eq!(
            parse_chunks(split_at(&bytes, &[cut])),
            expected,
            "cut at {cut}"
        );
    }
    let [ServerOp::HMsg {
        headers, payload, ..
    }] = &expected[..]
    else {
        unreachable!()
    };
    assert!(payload.is_empty());
    let map = HeaderMap::parse(headers).expect("header block parses");
    assert_eq!(map.status(), Some(503));
    assert_eq!(map.len(), 0);

    // A status with a description (pull request timeout).
    let headers = b"NATS/1.0 408 Request Timeout\r\n\r\n";
    let bytes = hmsg_line("_INBOX.y", 4, None, headers, b"");
    match parse_whole(&bytes).as_slice() {
        [ServerOp::HMsg {
            headers: h,
            payload,
            ..
        }] => {
            assert!(payload.is_empty());
            let map = HeaderMap::parse(h).unwrap();
            assert_eq!(map.status(), Some(408));
            assert_eq!(map.description(), Some("Request Timeout"));
        }
        other => panic!("expected HMSG, got {other:?}"),
    }
}

#[test]
fn tabs_and_repeated_blanks_separate_arguments() {
    assert_eq!(
        parse_whole(b"MSG\ta\t1\t3\r\nfoo\r\n"),
        [msg("a", 1, None, b"foo")]
    );
    assert_eq!(
        parse_whole(b"MSG  a \t 1\t\tr   3 \t\r\nfoo\r\n"),
        [msg("a", 1, Some("r"), b"foo")]
    );
    assert_eq!(
        parse_whole(b"HMSG\ta\t1\t12\t14\r\nNATS/1.0\r\n\r\nhi\r\n"),
        [hmsg("a", 1, None, b"NATS/1.0\r\n\r\n", b"hi")]
    );
    assert_eq!(parse_whole(b"PING\t\r\n"), [ServerOp::Ping]);
    assert_eq!(
        parse_whole(b"-ERR\t'x y'\r\n"),
        [ServerOp::Err("x y".to_owned())]
    );
}

#[test]
fn several_ops_in_one_feed_come_out_in_order() {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(INFO_LINE);
    bytes.extend_from_slice(b"PING\r\n+OK\r\nMSG a.b 1 3\r\nfoo\r\nMSG c 2 r.1 0\r\n\r\n");
    bytes.extend_from_slice(&hmsg_line(
        "h",
        3,
        None,
        b"NATS/1.0\r\nA: b\r\n\r\n",
        b"pay",
    ));
    bytes.extend_from_slice(b"-ERR 'Stale Connection'\r\nPONG\r\nMSG z 4 1\r\n\n\r\n");

    let ops = parse_whole(&bytes);
    assert_eq!(ops.len(), 9, "{ops:?}");
    let ServerOp::Info(info) = &ops[0] else {
        panic!("expected INFO first, got {:?}", ops[0]);
    };
    assert_eq!(info.server_name, "n1");
    assert_eq!(
        ops[1..],
        [
            ServerOp::Ping,
            ServerOp::Ok,
            msg("a.b", 1, None, b"foo"),
            msg("c", 2, Some("r.1"), b""),
            hmsg("h", 3, None, b"NATS/1.0\r\nA: b\r\n\r\n", b"pay"),
            ServerOp::Err("Stale Connection".to_owned()),
            ServerOp::Pong,
            msg("z", 4, None, b"\n"),
        ]
    );
    // Same result one byte at a time and in odd chunk sizes.
    assert_eq!(parse_chunks(chunked(&bytes, &[1])), ops);
    assert_eq!(parse_chunks(chunked(&bytes, &[7, 1, 13, 2])), ops);
}

#[test]
fn reset_forgets_partial_input() {
    let mut p = Parser::new();
    p.feed(b"MSG a 1 10\r\nabc");
    assert_eq!(p.next_op(), Ok(None));
    assert!(p.buffered() > 0);
    p.reset();
    assert_eq!(p.buffered(), 0);
    p.feed(b"PING\r\n");
    assert_eq!(p.next_op(), Ok(Some(ServerOp::Ping)));
    assert_eq!(p.next_op(), Ok(None));
}

// ---------------------------------------------------------------------------------------------------
// 2. Garbage is an error, never a panic
// ---------------------------------------------------------------------------------------------------

fn assert_bad_args(bytes: &[u8], want_op: &str, reason_has: &str) {
    match first_error(bytes) {
        ParseError::BadArgs { op, reason, .. } => {
            assert_eq!(op, want_op, "{:?}", String::from_utf8_lossy(bytes));
            assert!(
                reason.contains(reason_has),
                "{:?}: reason {reason:?} should mention {reason_has:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        other => panic!(
            "{:?}: expected BadArgs, got {other:?}",
            String::from_utf8_lossy(bytes)
        ),
    }
}

#[test]
fn unknown_ops_fail_before_the_line_end() {
    for bytes in [
        &b"POO\r\n"[..],
        b"MSGx\r\n",
        b"HTTP/1.1 400 Bad Request\r\n",
        b"GET / HTTP/1.1\r\n",
        b"PINGX\r\n",
        b"INFO{}\r\n",
        b"\r\n",
        b"{\"a\":1}\r\n",
        b"\0\0\0\0",
    ] {
        assert!(
            matches!(first_error(bytes), ParseError::UnknownOp(_)),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }

    // As soon as the first few bytes rule out every operation, without waiting for a line end.
    for prefix in [
        &b"HTTP"[..],
        b"HT",
        b"POO",
        b"MSGx",
        b"PINGX",
        b"+OKAY",
        b"-ERRR",
        b"X",
        b"\x16\x03\x01",
        b"{",
    ] {
        let mut p = Parser::new();
        p.feed(prefix);
        assert!(
            matches!(p.next_op(), Err(ParseError::UnknownOp(_))),
            "{:?} alone should be rejected",
            String::from_utf8_lossy(prefix)
        );
    }
    // Prefixes of real operations wait for more.
    for prefix in [
        &b"P"[..],
        b"H",
        b"PO",
        b"PIN",
        b"M",
        b"MS",
        b"MSG",
        b"MSG ",
        b"HMS",
        b"+",
        b"+O",
        b"-E",
        b"I",
        b"INF",
        b"INFO ",
        b"msg",
    ] {
        let mut p = Parser::new();
        p.feed(prefix);
        assert_eq!(
            p.next_op(),
            Ok(None),
            "{:?} is a plausible start",
            String::from_utf8_lossy(prefix)
        );
    }
    // An HTTP answer fed byte by byte fails at its second byte (`H` could still be `HMSG`).
    let mut p = Parser::new();
    let mut failed_at = None;
    for (i, b) in b"HTTP/1.1 400 Bad Request\r\n".iter().enumerate() {
        p.feed(std::slice::from_ref(b));
        if p.next_op().is_err() {
            failed_at = Some(i + 1);
            break;
        }
    }
    assert_eq!(failed_at, Some(2));
}

#[test]
fn malformed_msg_arguments() {
    assert_bad_args(b"MSG foo\r\n", "MSG", "number of arguments");
    assert_bad_args(b"MSG\r\n", "MSG", "number of arguments");
    assert_bad_args(b"MSG foo 1\r\n", "MSG", "number of arguments");
    assert_bad_args(b"MSG a 1 r 3 4\r\n", "MSG", "number of arguments");
    assert_bad_args(b"MSG a 1 r x 3 4\r\n", "MSG", "too many");
    assert_bad_args(b"HMSG a 1 3\r\n", "HMSG", "number of arguments");
    assert_bad_args(b"HMSG a 1 r 1 2 3\r\n", "HMSG", "too many");
    assert_bad_args(b"HMSG a 1 r 1\r\n", "HMSG", "header size is not a number");
    assert_bad_args(b"MSG foo bar 1\r\n", "MSG", "sid");
    assert_bad_args(b"MSG foo -1 1\r\n", "MSG", "sid");
    assert_bad_args(b"HMSG foo bar 1 1\r\n", "HMSG", "sid");
    // Sizes with letters or signs.
    assert_bad_args(b"MSG a 1 3x\r\n", "MSG", "size");
    assert_bad_args(b"MSG a 1 x3\r\n", "MSG", "size");
    assert_bad_args(b"MSG a 1 r abc\r\n", "MSG", "size");
    assert_bad_args(b"MSG a 1 -3\r\n", "MSG", "size");
    assert_bad_args(b"MSG a 1 +3\r\n", "MSG", "size");
    assert_bad_args(b"MSG a 1 0x10\r\n", "MSG", "size");
    assert_bad_args(b"HMSG a 1 1a 5\r\n", "HMSG", "header size");
    assert_bad_args(b"HMSG a 1 1 5b\r\n", "HMSG", "total size");
    // Sizes of more than 15 digits, whatever their value.
    assert_bad_args(b"MSG a 1 1234567890123456\r\n", "MSG", "size");
    assert_bad_args(b"MSG a 1 0000000000000003\r\n", "MSG", "size");
    assert_bad_args(b"MSG a 1 99999999999999999999999999\r\n", "MSG", "size");
    assert_bad_args(b"MSG a 1234567890123456 3\r\n", "MSG", "sid");
    assert_bad_args(
        b"HMSG a 1 1234567890123456 1234567890123457\r\n",
        "HMSG",
        "size",
    );
    // 15 digits is still a number (here 3), but 15 nines is more than any server allows.
    assert_eq!(
        parse_whole(b"MSG a 1 000000000000003\r\nfoo\r\n"),
        [msg("a", 1, None, b"foo")]
    );
    assert_eq!(
        first_error(b"MSG a 1 999999999999999\r\n"),
        ParseError::TooLarge {
            size: 999_999_999_999_999,
            max: 64 << 20
        }
    );
    assert_eq!(
        first_error(b"HMSG a 1 0 67108865\r\n"),
        ParseError::TooLarge {
            size: (64 << 20) + 1,
            max: 64 << 20
        }
    );
    // Header size larger than the total.
    assert_bad_args(b"HMSG a 1 10 5\r\n", "HMSG", "header size larger");
    assert_bad_args(b"HMSG a 1 r 13 12\r\n", "HMSG", "header size larger");
}

#[test]
fn payload_must_be_followed_by_crlf() {
    assert_eq!(
        first_error(b"MSG a 1 3\r\nfooXX"),
        ParseError::BadPayloadEnd
    );
    assert_eq!(
        first_error(b"MSG a 1 3\r\nfoo\n\r"),
        ParseError::BadPayloadEnd
    );
    assert_eq!(
        first_error(b"MSG a 1 3\r\nfoo\r\r"),
        ParseError::BadPayloadEnd
    );
    // A size one too small leaves the last payload byte where the CRLF should be.
    assert_eq!(
        first_error(b"MSG a 1 2\r\nfoo\r\n"),
        ParseError::BadPayloadEnd
    );
    assert_eq!(
        first_error(b"HMSG a 1 12 12\r\nNATS/1.0\r\n\r\nX\r\n"),
        ParseError::BadPayloadEnd
    );
    // Not decided until both end bytes are there; then decided on the first bad byte pair.
    let mut p = Parser::new();
    p.feed(b"MSG a 1 3\r\nfooX");
    assert_eq!(p.next_op(), Ok(None));
    p.feed(b"X");
    assert_eq!(p.next_op(), Err(ParseError::BadPayloadEnd));
}

#[test]
fn control_line_must_end_in_crlf() {
    assert!(matches!(
        first_error(b"MSG a 1 3\nfoo\r\n"),
        ParseError::BadLineEnd(_)
    ));
    assert!(matches!(
        first_error(b"-ERR 'x'\n"),
        ParseError::BadLineEnd(_)
    ));
    assert!(matches!(
        first_error(b"INFO {}\n"),
        ParseError::BadLineEnd(_)
    ));
    // Bare LF right after the op name or alone: an error too (of whichever kind).
    first_error(b"PING\n");
    first_error(b"\n");
    first_error(b"+OK\n\r\n");
}

#[test]
fn non_utf8_subjects_are_delivered_with_replacement_characters_and_said() {
    // nats-server forwards a subject's bytes as published: any client can send these, and the
    // connection (every subscription on it) must not pay for one message.
    let wire: &[u8] = b"MSG \xff\xfe 1 3\r\nfoo\r\nMSG a 1 \xc3\x28 3\r\nbar\r\n\
        HMSG a.\x80 1 12 12\r\nNATS/1.0\r\n\r\n\r\nMSG ok 1 2\r\nhi\r\n";
    let want = [
        (msg("\u{fffd}\u{fffd}", 1, None, b"foo"), true),
        (msg("a", 1, Some("\u{fffd}("), b"bar"), true),
        (hmsg("a.\u{fffd}", 1, None, b"NATS/1.0\r\n\r\n", b""), true),
        (msg("ok", 1, None, b"hi"), false),
    ];
    // Whole, and cut inside each control line and each payload (the pending path).
    for cut in 0..wire.len() {
        let mut p = Parser::new();
        let mut got = Vec::new();
        for chunk in split_at(wire, &[cut]) {
            p.feed(chunk);
            while let Some(op) = p.next_op().expect("no error") {
                got.push((op, p.take_lossy()));
                assert!(!p.take_lossy(), "reading it clears it");
            }
        }
        assert_eq!(got, want, "cut at {cut}");
    }
    // Valid multi-byte UTF-8 is fine.
    assert_eq!(
        parse_whole("MSG caf\u{e9}.\u{1f600} 1 r.\u{fc} 1\r\nx\r\n".as_bytes()),
        [msg("caf\u{e9}.\u{1f600}", 1, Some("r.\u{fc}"), b"x")]
    );
}

#[test]
fn invalid_info_json() {
    for bytes in [
        &b"INFO {not json}\r\n"[..],
        b"INFO {\"server_name\":\"n\"\r\n",
        b"INFO \r\n",
        b"INFO\r\n",
        b"INFO \"a string\"\r\n",
        b"INFO 42\r\n",
        b"INFO {\"port\":\"not a number\"}\r\n",
        b"INFO {\"max_payload\":-1}\r\n",
        b"INFO {} trailing\r\n",
    ] {
        assert!(
            matches!(first_error(bytes), ParseError::BadInfo(_)),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    // Nesting a hostile server could use to exhaust the stack is refused, not followed.
    let deep = format!(
        "INFO {{\"x\":{}{}}}\r\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert!(matches!(
        first_error(deep.as_bytes()),
        ParseError::BadInfo(reason) if reason.contains("nested")
    ));
}

#[test]
fn bare_ops_with_arguments_are_errors() {
    for bytes in [&b"PING x\r\n"[..], b"PONG 1\r\n", b"+OK ok\r\n"] {
        assert!(
            matches!(first_error(bytes), ParseError::UnknownOp(_)),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn messages_over_64_mib_only_from_a_server_that_allows_them() {
    let mut p = Parser::new();
    p.feed(b"MSG a 1 67108864\r\n");
    assert_eq!(p.next_op(), Ok(None), "64 MiB waits for its payload");
    // What a parser told by INFO that `allowed` bytes are allowed makes of the control line
    // `line`: waiting for the message, or too large for the bound.
    let after_info = |allowed: usize, line: &[u8]| {
        let mut p = Parser::new();
        p.allow_max_payload(allowed);
        p.feed(line);
        p.next_op()
    };
    let too_large = |size, max| Err(ParseError::TooLarge { size, max });
    // A server's INFO allowing less changes nothing; one allowing more raises the bound to it.
    assert_eq!(
        after_info(1 << 20, b"MSG a 1 67108865\r\n"),
        too_large((64 << 20) + 1, 64 << 20)
    );
    assert_eq!(
        after_info(80 << 20, b"HMSG a 1 r 12 83886080\r\n"),
        Ok(None)
    );
    assert_eq!(
        after_info(80 << 20, b"MSG a 1 83886081\r\n"),
        too_large((80 << 20) + 1, 80 << 20)
    );
    // A claim of more than nats-server can allow (an int32) is not trusted: no size near
    // usize::MAX gets through to the arithmetic (it overflowed, and panicked), and what is
    // reserved for a size announced is bounded: the bytes must come.
    assert_eq!(
        after_info(usize::MAX, b"MSG a 1 4294967295\r\n"),
        too_large(4_294_967_295, i32::MAX as usize)
    );
    p.reset();
    p.allow_max_payload(usize::MAX);
    p.feed(b"MSG a 1 2147483647\r\n");
    assert_eq!(p.next_op(), Ok(None));
    p.feed(b"xx");
    assert_eq!(p.next_op(), Ok(None));
    assert_eq!(p.buffered(), 2);
    // A reset (a new connection) forgets the last server's bound until its INFO comes.
    p.reset();
    assert!(matches!(
        first_error_of(&mut p, b"MSG a 1 67108865\r\n"),
        ParseError::TooLarge { .. }
    ));
}

/// An `-ERR` line whose line feed is at `lf`.
fn err_line(lf: usize) -> Vec<u8> {
    let mut line = b"-ERR '".to_vec();
    line.resize(lf - 2, b'a');
    line.extend_from_slice(b"'\r\n");
    assert_eq!(line.iter().position(|&b| b == b'\n'), Some(lf));
    line
}

#[test]
fn a_line_is_too_long_or_not_however_its_bytes_were_cut() {
    let longest = err_line(MAX_CONTROL_LINE);
    let too_long = err_line(MAX_CONTROL_LINE + 1);
    for cut in [
        1,
        MAX_CONTROL_LINE / 2,
        MAX_CONTROL_LINE,
        MAX_CONTROL_LINE + 1,
    ] {
        let ops = parse_chunks(split_at(&longest, &[cut]));
        assert!(
            matches!(ops.as_slice(), [ServerOp::Err(text)] if text.len() == MAX_CONTROL_LINE - 8),
            "cut at {cut}: {} ops",
            ops.len()
        );
    }
    for cuts in [&[][..], &[MAX_CONTROL_LINE / 2], &[MAX_CONTROL_LINE + 1]] {
        let mut p = Parser::new();
        let mut result = Ok(None);
        for chunk in split_at(&too_long, cuts) {
            p.feed(chunk);
            result = p.next_op();
            if result.is_err() {
                break;
            }
        }
        assert_eq!(
            result,
            Err(ParseError::LineTooLong(MAX_CONTROL_LINE)),
            "cut at {cuts:?}"
        );
    }
}

#[test]
fn control_line_without_end_is_bounded() {
    let mut p = Parser::new();
    p.feed(b"INFO {\"server_name\":\"");
    p.feed(&vec![b'a'; 1024 * 1024]);
    assert!(matches!(p.next_op(), Err(ParseError::LineTooLong(_))));
    p.reset();
    p.feed(b"PONG\r\n");
    assert_eq!(p.next_op(), Ok(Some(ServerOp::Pong)));
}

#[test]
fn ops_before_garbage_are_delivered_and_reset_recovers() {
    let mut p = Parser::new();
    p.feed(b"PING\r\nMSG a 1 3\r\nfoo\r\nPOO\r\nPONG\r\n");
    assert_eq!(p.next_op(), Ok(Some(ServerOp::Ping)));
    assert_eq!(p.next_op(), Ok(Some(msg("a", 1, None, b"foo"))));
    assert!(matches!(p.next_op(), Err(ParseError::UnknownOp(_))));
    p.reset();
    assert_eq!(p.next_op(), Ok(None));
    p.feed(b"MSG b 2 1\r\nx\r\n");
    assert_eq!(p.next_op(), Ok(Some(msg("b", 2, None, b"x"))));
}

// ---------------------------------------------------------------------------------------------------
// 3. Property tests
// ---------------------------------------------------------------------------------------------------

/// A valid server operation plus how it is spelled on the wire.
#[derive(Debug, Clone)]
enum WireOp {
    Msg {
        subject: String,
        sid: u64,
        reply: Option<String>,
        payload: Vec<u8>,
    },
    HMsg {
        subject: String,
        sid: u64,
        reply: Option<String>,
        headers: Vec<u8>,
        payload: Vec<u8>,
    },
    Ping,
    Pong,
    Ok,
    Err(String),
}

#[derive(Debug, Clone)]
struct Spelling {
    /// Bit i set: letter i of the op name in lowercase.
    case_mask: u8,
    sep: &'static str,
}

impl WireOp {
    fn expected(&self) -> ServerOp {
        match self {
            WireOp::Msg {
                subject,
                sid,
                reply,
                payload,
            } => msg(subject, *sid, reply.as_deref(), payload),
            WireOp::HMsg {
                subject,
                sid,
                reply,
                headers,
                payload,
            } => hmsg(subject, *sid, reply.as_deref(), headers, payload),
            WireOp::Ping => ServerOp::Ping,
            WireOp::Pong => ServerOp::Pong,
            WireOp::Ok => ServerOp::Ok,
            WireOp::Err(text) => ServerOp::Err(text.clone()),
        }
    }

    fn encode(&self, spelling: &Spelling, out: &mut Vec<u8>) {
        let name = match self {
            WireOp::Msg { .. } => "MSG",
            WireOp::HMsg { .. } => "HMSG",
            WireOp::Ping => "PING",
            WireOp::Pong => "PONG",
            WireOp::Ok => "+OK",
            WireOp::Err(_) => "-ERR",
        };
        out.extend(name.bytes().enumerate().map(|(i, b)| {
            if spelling.case_mask & (1 << i) != 0 {
                b.to_ascii_lowercase()
            } else {
                b
            }
        }));
        let sep = spelling.sep.as_bytes();
        let arg = |out: &mut Vec<u8>, a: &[u8]| {
            out.extend_from_slice(sep);
            out.extend_from_slice(a);
        };
        match self {
            WireOp::Msg {
                subject,
                sid,
                reply,
                payload,
            } => {
                arg(out, subject.as_bytes());
                arg(out, sid.to_string().as_bytes());
                if let Some(r) = reply {
                    arg(out, r.as_bytes());
                }
                arg(out, payload.len().to_string().as_bytes());
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(payload);
            }
            WireOp::HMsg {
                subject,
                sid,
                reply,
                headers,
                payload,
            } => {
                arg(out, subject.as_bytes());
                arg(out, sid.to_string().as_bytes());
                if let Some(r) = reply {
                    arg(out, r.as_bytes());
                }
                arg(out, headers.len().to_string().as_bytes());
                arg(out, (headers.len() + payload.len()).to_string().as_bytes());
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(headers);
                out.extend_from_slice(payload);
            }
            WireOp::Err(text) => arg(out, format!("'{text}'").as_bytes()),
            WireOp::Ping | WireOp::Pong | WireOp::Ok => {}
        }
        out.extend_from_slice(b"\r\n");
    }
}

fn subject_strategy() -> impl Strategy<Value = String> + Clone {
    vec("[a-z0-9]{1,8}", 1..5).prop_map(|tokens| tokens.join("."))
}

fn payload_strategy() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => any::<u8>(),
        1 => Just(b'\r'),
        1 => Just(b'\n'),
    ];
    prop_oneof![
        1 => Just(Vec::new()),
        6 => vec(byte.clone(), 0..64),
        1 => vec(byte, 64..600),
    ]
}

fn headers_strategy() -> impl Strategy<Value = Vec<u8>> {
    let status = prop_oneof![
        Just(String::new()),
        Just(" 503".to_owned()),
        Just(" 408 Request Timeout".to_owned()),
        Just(" 100 Idle Heartbeat".to_owned()),
    ];
    let entry = ("[A-Za-z][A-Za-z0-9-]{0,12}", "[ -~]{0,20}");
    (status, vec(entry, 0..4)).prop_map(|(status, entries)| {
        let mut block = format!("NATS/1.0{status}\r\n");
        for (name, value) in entries {
            block.push_str(&format!("{name}: {value}\r\n"));
        }
        block.push_str("\r\n");
        block.into_bytes()
    })
}

const MAX_SID: u64 = 999_999_999_999_999; // 15 digits

fn wire_op_strategy() -> impl Strategy<Value = WireOp> {
    let sid = prop_oneof![3 => 0u64..1000, 1 => 0u64..=MAX_SID];
    let reply = proptest::option::of(subject_strategy());
    prop_oneof![
        4 => (subject_strategy(), sid.clone(), reply.clone(), payload_strategy()).prop_map(
            |(subject, sid, reply, payload)| WireOp::Msg { subject, sid, reply, payload }
        ),
        3 => (subject_strategy(), sid, reply, headers_strategy(), payload_strategy()).prop_map(
            |(subject, sid, reply, headers, payload)| WireOp::HMsg {
                subject,
                sid,
                reply,
                headers,
                payload
            }
        ),
        1 => Just(WireOp::Ping),
        1 => Just(WireOp::Pong),
        1 => Just(WireOp::Ok),
        1 => "[A-Za-z0-9\"._>*-][A-Za-z0-9 \"._>*-]{0,40}".prop_map(WireOp::Err),
    ]
}

fn spelling_strategy() -> impl Strategy<Value = Spelling> {
    let case_mask = prop_oneof![3 => Just(0u8), 1 => Just(0xffu8), 1 => any::<u8>()];
    let sep = prop_oneof![6 => Just(" "), 1 => Just("\t"), 1 => Just("  "), 1 => Just(" \t ")];
    (case_mask, sep).prop_map(|(case_mask, sep)| Spelling { case_mask, sep })
}

/// Encodes the ops; also returns the byte offset at which each op ends.
fn encode_all(ops: &[(WireOp, Spelling)]) -> (Vec<u8>, Vec<usize>) {
    let mut bytes = Vec::new();
    let mut ends = Vec::with_capacity(ops.len());
    for (op, spelling) in ops {
        op.encode(spelling, &mut bytes);
        ends.push(bytes.len());
    }
    (bytes, ends)
}

fn chunk_sizes_strategy() -> impl Strategy<Value = Vec<usize>> {
    vec(
        prop_oneof![3 => 1usize..=4, 3 => 1usize..=64, 1 => 1usize..=4096],
        1..12,
    )
}

/// Feeds `chunks` in order, never expecting anything: on an error, optionally resets and goes on.
/// Returns the ops returned before the first error, and whether an error happened.
fn feed_tolerantly(chunks: &[&[u8]], reset_after_err: bool) -> (Vec<ServerOp>, bool) {
    let mut p = Parser::new();
    let mut before_error = Vec::new();
    let mut failed = false;
    for chunk in chunks {
        p.feed(chunk);
        loop {
            match p.next_op() {
                Ok(Some(op)) => {
                    if !failed {
                        before_error.push(op);
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    if reset_after_err {
                        p.reset();
                        assert_eq!(p.buffered(), 0);
                    }
                    break;
                }
            }
        }
    }
    // Whatever state it is in, asking again does not panic either.
    let _ = p.next_op();
    let _ = p.next_op();
    (before_error, failed)
}

fn garbage_strategy() -> impl Strategy<Value = Vec<u8>> {
    let fragment = prop_oneof![
        2 => vec(any::<u8>(), 0..16),
        4 => select(vec![
            "MSG ", "HMSG ", "msg ", "PING", "PONG", "+OK", "-ERR ", "INFO ", "\r\n", "\r", "\n",
            " ", "\t", "a.b", "1", "0", "3", "12", "999999999999999", "9999999999999999",
            "67108864", "{", "}", "'", "\"", "NATS/1.0\r\n", "HTTP/1.1 ", "\u{e9}", "\u{ff}",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        1 => (0u64..100).prop_map(|n| n.to_string().into_bytes()),
    ];
    prop_oneof![
        1 => vec(any::<u8>(), 0..512),
        3 => vec(fragment, 0..60).prop_map(|parts| parts.concat()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// (a) Any split of a valid stream yields exactly the ops of the whole, which are the ops encoded.
    #[test]
    fn any_split_of_a_valid_stream_yields_the_same_ops(
        ops in vec((wire_op_strategy(), spelling_strategy()), 0..20),
        sizes in chunk_sizes_strategy(),
        cuts in vec(any::<Index>(), 0..8),
    ) {
        let (bytes, _) = encode_all(&ops);
        let expected: Vec<ServerOp> = ops.iter().map(|(op, _)| op.expected()).collect();

        let whole = parse_whole(&bytes);
        prop_assert_eq!(&whole, &expected);

        let by_sizes = parse_chunks(chunked(&bytes, &sizes));
        prop_assert_eq!(&by_sizes, &whole);

        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let at_cuts = parse_chunks(split_at(&bytes, &cuts));
        prop_assert_eq!(&at_cuts, &whole);
    }

    /// (b) Garbage fed in any chunks never panics, with or without a reset after each error.
    #[test]
    fn garbage_never_panics(
        garbage in garbage_strategy(),
        sizes in chunk_sizes_strategy(),
        reset_after_err in prop_oneof![3 => Just(true), 1 => Just(false)],
    ) {
        let chunks = chunked(&garbage, &sizes);
        feed_tolerantly(&chunks, reset_after_err);
        // The whole of it at once, too.
        feed_tolerantly(&[garbage.as_slice()], reset_after_err);
    }

    /// (c) A valid stream with random bytes inserted never panics, and every op that ends before the
    /// insertion comes out intact before any error.
    #[test]
    fn valid_stream_with_inserted_bytes(
        ops in vec((wire_op_strategy(), spelling_strategy()), 1..12),
        at in any::<Index>(),
        inserted in prop_oneof![vec(any::<u8>(), 1..16), garbage_strategy()],
        sizes in chunk_sizes_strategy(),
    ) {
        let (mut bytes, ends) = encode_all(&ops);
        let pos = at.index(bytes.len() + 1);
        bytes.splice(pos..pos, inserted.iter().copied());
        let intact = ends.iter().take_while(|&&end| end <= pos).count();
        let expected: Vec<ServerOp> =
            ops[..intact].iter().map(|(op, _)| op.expected()).collect();

        for (reset_after_err, chunks) in [
            (true, chunked(&bytes, &sizes)),
            (false, vec![&bytes[..]]),
        ] {
            let (got, _) = feed_tolerantly(&chunks, reset_after_err);
            prop_assert!(got.len() >= intact, "only {} of {} intact ops", got.len(), intact);
            prop_assert_eq!(&got[..intact], &expected[..]);
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// 4. 100 back-to-back 1 MiB messages
// ---------------------------------------------------------------------------------------------------

const BIG: usize = 1024 * 1024;
const BIG_COUNT: usize = 100;

fn big_stream() -> Vec<u8> {
    let mut bytes = Vec::with_capacity(BIG_COUNT * (BIG + 64));
    for i in 0..BIG_COUNT {
        bytes.extend_from_slice(format!("MSG big.{i} {i} r.{i} {BIG}\r\n").as_bytes());
        bytes.resize(bytes.len() + BIG, i as u8);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes
}

/// Checks the `i`th big message exactly; `reference` is a 1 MiB scratch buffer.
fn check_big(i: usize, op: &ServerOp, reference: &mut [u8]) {
    let ServerOp::Msg {
        sid,
        subject,
        reply,
        payload,
    } = op
    else {
        panic!("message {i}: expected MSG, got {op:?}");
    };
    assert_eq!(subject.as_str(), format!("big.{i}"), "subject of {i}");
    assert_eq!(*sid, i as u64, "sid of {i}");
    assert_eq!(
        reply.as_ref().map(Subject::as_str),
        Some(format!("r.{i}").as_str()),
        "reply of {i}"
    );
    assert_eq!(payload.len(), BIG, "payload length of {i}");
    let fill = i as u8;
    assert_eq!(payload[0], fill, "first byte of {i}");
    assert_eq!(payload[BIG / 2], fill, "middle byte of {i}");
    assert_eq!(payload[BIG - 1], fill, "last byte of {i}");
    reference.fill(fill);
    assert!(
        payload[..] == reference[..],
        "payload of {i} is not all {fill}"
    );
}

#[test]
fn hundred_one_mib_messages_in_one_buffer() {
    let bytes = big_stream();
    let mut reference = vec![0u8; BIG];

    let mut p = Parser::new();
    p.feed(&bytes);
    for i in 0..BIG_COUNT {
        let op = p.next_op().expect("no error").expect("a complete message");
        check_big(i, &op, &mut reference);
    }
    assert_eq!(p.next_op(), Ok(None));
    assert_eq!(p.buffered(), 0);
}

#[test]
fn hundred_one_mib_messages_in_64k_chunks() {
    let bytes = big_stream();
    let mut reference = vec![0u8; BIG];

    let mut p = Parser::new();
    let mut i = 0;
    for chunk in bytes.chunks(64 * 1024) {
        p.feed(chunk);
        while let Some(op) = p.next_op().expect("no error") {
            check_big(i, &op, &mut reference);
            i += 1;
        }
    }
    assert_eq!(i, BIG_COUNT);
    assert_eq!(p.next_op(), Ok(None));
    assert_eq!(p.buffered(), 0);
}

/// Frames handed over by value (the drivers' path) parse exactly like borrowed ones, whether the
/// buffer is empty when they arrive or holds the start of an operation.
#[test]
fn owned_frames_parse_like_borrowed_ones() {
    let stream = b"MSG a 1 3\r\nfoo\r\nPING\r\nHMSG b 2 r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n".to_vec();
    let whole = {
        let mut p = Parser::new();
        p.feed(&stream);
        std::iter::from_fn(|| p.next_op().unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(whole.len(), 3);
    for cut in 0..=stream.len() {
        let mut p = Parser::new();
        let mut ops = Vec::new();
        for chunk in [&stream[..cut], &stream[cut..]] {
            p.feed_owned(chunk.to_vec());
            while let Some(op) = p.next_op().unwrap() {
                ops.push(op);
            }
        }
        assert_eq!(ops, whole, "cut at {cut}");
    }
}

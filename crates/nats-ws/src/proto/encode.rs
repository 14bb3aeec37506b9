//! Encoding of what the client sends. Every function writes one whole operation, so a buffer built
//! from them never holds half a frame.

use bytes::BufMut;

use crate::header::HeaderMap;

/// One operation from the client, borrowed from the caller.
#[derive(Debug, Clone, Copy)]
pub enum ClientOp<'a> {
    Connect(&'a str),
    Pub {
        subject: &'a str,
        reply: Option<&'a str>,
        headers: Option<&'a HeaderMap>,
        payload: &'a [u8],
    },
    Sub {
        subject: &'a str,
        queue_group: Option<&'a str>,
        sid: u64,
    },
    Unsub {
        sid: u64,
        max: Option<u64>,
    },
    Ping,
    Pong,
}

impl ClientOp<'_> {
    /// Appends the operation to `out`.
    pub fn encode(&self, out: &mut impl BufMut) {
        match *self {
            ClientOp::Connect(json) => {
                out.put_slice(b"CONNECT ");
                out.put_slice(json.as_bytes());
                out.put_slice(b"\r\n");
            }
            ClientOp::Pub {
                subject,
                reply,
                headers,
                payload,
            } => {
                let mut num = itoa::Buffer::new();
                match headers {
                    None => out.put_slice(b"PUB "),
                    Some(_) => out.put_slice(b"HPUB "),
                }
                out.put_slice(subject.as_bytes());
                out.put_u8(b' ');
                if let Some(reply) = reply {
                    out.put_slice(reply.as_bytes());
                    out.put_u8(b' ');
                }
                if let Some(h) = headers {
                    let header_len = h.encoded_len();
                    out.put_slice(num.format(header_len).as_bytes());
                    out.put_u8(b' ');
                    out.put_slice(num.format(header_len + payload.len()).as_bytes());
                    out.put_slice(b"\r\n");
                    h.encode(out);
                } else {
                    out.put_slice(num.format(payload.len()).as_bytes());
                    out.put_slice(b"\r\n");
                }
                out.put_slice(payload);
                out.put_slice(b"\r\n");
            }
            ClientOp::Sub {
                subject,
                queue_group,
                sid,
            } => {
                out.put_slice(b"SUB ");
                out.put_slice(subject.as_bytes());
                out.put_u8(b' ');
                if let Some(q) = queue_group {
                    out.put_slice(q.as_bytes());
                    out.put_u8(b' ');
                }
                out.put_slice(itoa::Buffer::new().format(sid).as_bytes());
                out.put_slice(b"\r\n");
            }
            ClientOp::Unsub { sid, max } => {
                let mut num = itoa::Buffer::new();
                out.put_slice(b"UNSUB ");
                out.put_slice(num.format(sid).as_bytes());
                if let Some(max) = max {
                    out.put_u8(b' ');
                    out.put_slice(num.format(max).as_bytes());
                }
                out.put_slice(b"\r\n");
            }
            ClientOp::Ping => out.put_slice(b"PING\r\n"),
            ClientOp::Pong => out.put_slice(b"PONG\r\n"),
        }
    }

    /// An upper bound of the encoded size, exact for `Pub`.
    pub fn encoded_len(&self) -> usize {
        match *self {
            ClientOp::Pub {
                subject,
                reply,
                headers,
                payload,
            } => {
                let digits = |n: usize| itoa::Buffer::new().format(n).len();
                let body = headers.map_or(0, HeaderMap::encoded_len) + payload.len();
                let sizes = match headers {
                    Some(h) => 5 + digits(h.encoded_len()) + 1 + digits(body),
                    None => 4 + digits(body),
                };
                sizes + subject.len() + 1 + reply.map_or(0, |r| r.len() + 1) + 2 + body + 2
            }
            ClientOp::Connect(json) => json.len() + 10,
            ClientOp::Sub {
                subject,
                queue_group,
                ..
            } => 4 + subject.len() + queue_group.map_or(0, |q| q.len() + 1) + 24,
            ClientOp::Unsub { .. } => 50,
            ClientOp::Ping | ClientOp::Pong => 6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(op: ClientOp<'_>) -> Vec<u8> {
        let mut v = Vec::new();
        op.encode(&mut v);
        v
    }

    #[test]
    fn encodes_each_op() {
        assert_eq!(bytes(ClientOp::Ping), b"PING\r\n");
        assert_eq!(bytes(ClientOp::Pong), b"PONG\r\n");
        assert_eq!(
            bytes(ClientOp::Pub {
                subject: "foo",
                reply: None,
                headers: None,
                payload: b"hi"
            }),
            b"PUB foo 2\r\nhi\r\n"
        );
        assert_eq!(
            bytes(ClientOp::Pub {
                subject: "foo",
                reply: Some("r.1"),
                headers: None,
                payload: b""
            }),
            b"PUB foo r.1 0\r\n\r\n"
        );
        let mut h = HeaderMap::new();
        h.insert("A", "b");
        assert_eq!(
            bytes(ClientOp::Pub {
                subject: "foo",
                reply: None,
                headers: Some(&h),
                payload: b"xy"
            }),
            b"HPUB foo 18 20\r\nNATS/1.0\r\nA: b\r\n\r\nxy\r\n"
        );
        assert_eq!(
            bytes(ClientOp::Sub {
                subject: "a.>",
                queue_group: Some("q"),
                sid: 7
            }),
            b"SUB a.> q 7\r\n"
        );
        assert_eq!(
            bytes(ClientOp::Unsub {
                sid: 7,
                max: Some(3)
            }),
            b"UNSUB 7 3\r\n"
        );
        assert_eq!(bytes(ClientOp::Unsub { sid: 7, max: None }), b"UNSUB 7\r\n");
    }

    #[test]
    fn pub_length_is_exact() {
        let mut h = HeaderMap::new();
        h.insert("Nats-Msg-Id", "123");
        for headers in [None, Some(&h)] {
            for payload in [&b""[..], b"x", &[7u8; 1000]] {
                let op = ClientOp::Pub {
                    subject: "a.b",
                    reply: Some("_INBOX.x.1"),
                    headers,
                    payload,
                };
                assert_eq!(op.encoded_len(), bytes(op).len());
            }
        }
    }
}

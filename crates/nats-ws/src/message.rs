//! A message as delivered to a subscriber.

use bytes::Bytes;

use crate::header::HeaderMap;
use crate::subject::Subject;

/// A message delivered to a subscription or returned by a request.
///
/// Subject, reply and payload are slices of the frame they arrived in: delivery copies no bytes
/// to a subscriber that has taken the messages of earlier frames (in the browser, one that keeps
/// up: its task runs between two frames). One still holding some gets copies, so that what it
/// holds is its messages and not every frame they came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub subject: Subject,
    pub reply: Option<Subject>,
    pub headers: Option<HeaderMap>,
    pub payload: Bytes,
}

impl Message {
    /// The same message in bytes of its own. A parsed message shares the buffer of the frame it
    /// came in, and keeps all of it alive for as long as it is kept: a few bytes of one held
    /// back can keep a frame of hundreds of KiB (see `Inner::deliver`). Headers are their own.
    pub(crate) fn detached(self) -> Message {
        let reply_len = self.reply.as_ref().map_or(0, |r| r.len());
        let mut bytes =
            bytes::BytesMut::with_capacity(self.subject.len() + reply_len + self.payload.len());
        bytes.extend_from_slice(self.subject.as_bytes());
        if let Some(reply) = &self.reply {
            bytes.extend_from_slice(reply.as_bytes());
        }
        bytes.extend_from_slice(&self.payload);
        let mut bytes = bytes.freeze();
        let subject = Subject::from_utf8_lossy(bytes.split_to(self.subject.len())).0;
        let reply = self
            .reply
            .map(|r| Subject::from_utf8_lossy(bytes.split_to(r.len())).0);
        Message {
            subject,
            reply,
            headers: self.headers,
            payload: bytes,
        }
    }

    /// The status code of the header line (e.g. 503 no responders, 100 heartbeat), if any.
    pub fn status(&self) -> Option<u16> {
        self.headers.as_ref().and_then(HeaderMap::status)
    }

    /// The payload as text, if it is UTF-8.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.payload).ok()
    }
}

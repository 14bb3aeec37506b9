//! A message as delivered to a subscriber.

use bytes::Bytes;

use crate::header::HeaderMap;
use crate::subject::Subject;

/// A message delivered to a subscription or returned by a request.
///
/// Subject, reply and payload are slices of the frame they arrived in: delivery copies no bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub subject: Subject,
    pub reply: Option<Subject>,
    pub headers: Option<HeaderMap>,
    pub payload: Bytes,
}

impl Message {
    /// The status code of the header line (e.g. 503 no responders, 100 heartbeat), if any.
    pub fn status(&self) -> Option<u16> {
        self.headers.as_ref().and_then(HeaderMap::status)
    }

    /// The payload as text, if it is UTF-8.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.payload).ok()
    }
}

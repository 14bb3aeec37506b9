//! The native driver: tokio timers, and either a tokio-tungstenite WebSocket (`ws://`, and `wss://`
//! with rustls and the webpki root certificates) or a plain TCP stream (`nats://`, the server's
//! client port) — the same protocol core on both, the TCP stream simply carrying its bytes unframed.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use super::{Driver, Socket};
use crate::client::{run, Client};
use crate::error::{ConnectionError, NOT_HTTP};
use crate::options::Options;

/// Starts a client on the current tokio runtime and returns at once; the connection comes up in the
/// background (see [`Client::status`]) and is retried on failure per the reconnect policy.
pub fn start(options: Options) -> Result<Client, ConnectionError> {
    Client::start(options, |shared| {
        tokio::spawn(run(shared, NativeDriver));
    })
}

/// Connects and waits for the first attempt: `Ok` once the handshake completed, `Err` with the reason
/// if that first attempt failed. Later disconnects are retried per the reconnect policy.
pub async fn connect(options: Options) -> Result<Client, ConnectionError> {
    start(options)?.first_attempt().await
}

struct NativeDriver;

pub enum NativeSocket {
    WebSocket(Box<WebSocketStream<MaybeTlsStream<TcpStream>>>),
    Tcp(TcpSocket),
}

/// The largest WebSocket frame (and message) accepted from the server: 4 × nats-server's default
/// `max_pending` (64 MiB), the most it sends a client that fell behind in one frame.
const MAX_FRAME: usize = 256 << 20;

impl Driver for NativeDriver {
    type Socket = NativeSocket;
    type Sleep = Pin<Box<tokio::time::Sleep>>;

    #[cfg(feature = "nkeys")]
    fn sign(
        &self,
        request: crate::proto::SignRequest,
    ) -> impl Future<Output = Result<crate::proto::Signed, String>> + 'static {
        futures::future::ready(request.sign())
    }

    fn connect(&self, url: &str) -> impl Future<Output = Result<NativeSocket, String>> + 'static {
        let url = url.to_owned();
        async move {
            if let Some(rest) = url.strip_prefix("nats://") {
                return TcpSocket::connect(rest).await.map(NativeSocket::Tcp);
            }
            // Incoming frames and messages up to MAX_FRAME (tungstenite's defaults are 16 MiB and
            // 64 MiB): nats-server sends a non-browser WebSocket client everything pending for it
            // as one frame, up to its `max_pending` (64 MiB by default), so a subscriber that fell
            // 16 MiB behind used to fail on that frame ("Space limit exceeded"), reconnect, and
            // lose what was published meanwhile. But not without a limit: tungstenite reserves a
            // frame's length as its header states it, so a header claiming a terabyte aborted
            // the process.
            let config = WebSocketConfig::default()
                .max_frame_size(Some(MAX_FRAME))
                .max_message_size(Some(MAX_FRAME));
            let (ws, _response) = tokio_tungstenite::connect_async_tls_with_config(
                url,
                Some(config),
                true,
                Some(Connector::Rustls(tls_config()?)),
            )
            .await
            .map_err(describe)?;
            Ok(NativeSocket::WebSocket(Box::new(ws)))
        }
    }

    fn sleep(&self, duration: Duration) -> Self::Sleep {
        Box::pin(tokio::time::sleep(duration))
    }
}

impl Socket for NativeSocket {
    type Frame = Bytes;

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Bytes, String>> {
        let ws = match self {
            NativeSocket::Tcp(tcp) => return tcp.poll_recv(cx),
            NativeSocket::WebSocket(ws) => ws,
        };
        loop {
            return match ws.poll_next_unpin(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(None) => Poll::Ready(Err("connection closed".to_owned())),
                Poll::Ready(Some(Err(e))) => Poll::Ready(Err(describe(e))),
                Poll::Ready(Some(Ok(msg))) => match msg {
                    WsMessage::Binary(data) => Poll::Ready(Ok(data)),
                    WsMessage::Text(text) => Poll::Ready(Ok(Bytes::from(text))),
                    WsMessage::Close(frame) => Poll::Ready(Err(match frame {
                        Some(f) => format!(
                            "closed by the server (code {}: {}){}",
                            u16::from(f.code),
                            f.reason,
                            slow_consumer_hint(&f.reason)
                        ),
                        None => "closed by the server".to_owned(),
                    })),
                    WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_) => continue,
                },
            };
        }
    }

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), String>> {
        match self {
            NativeSocket::WebSocket(ws) => ws.poll_ready_unpin(cx).map_err(describe),
            NativeSocket::Tcp(tcp) => tcp.poll_ready(cx),
        }
    }

    fn start_send(&mut self, data: Bytes) -> Result<(), String> {
        match self {
            NativeSocket::WebSocket(ws) => ws
                .start_send_unpin(WsMessage::Binary(data))
                .map_err(describe),
            NativeSocket::Tcp(tcp) => {
                tcp.out_bytes += data.len();
                tcp.out.push_back(data);
                Ok(())
            }
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), String>> {
        match self {
            NativeSocket::WebSocket(ws) => ws.poll_flush_unpin(cx).map_err(describe),
            NativeSocket::Tcp(tcp) => tcp.poll_flush(cx),
        }
    }
}

/// `nats://`: the protocol's bytes straight over TCP. What is read is handed on as it arrives (the
/// parser accepts any split); what is sent queues as the driver's frames and is written in order.
pub struct TcpSocket {
    stream: TcpStream,
    read_buf: Box<[u8]>,
    out: VecDeque<Bytes>,
    /// Bytes of `out` not yet written.
    out_bytes: usize,
}

/// Bytes read from the socket per wake, at most.
const TCP_READ_CHUNK: usize = 64 * 1024;
/// `poll_ready` holds the driver back while this much waits to be written.
const TCP_WRITE_HIGH_WATER: usize = 256 * 1024;

impl TcpSocket {
    /// `authority` is what follows `nats://`: `host[:port]` (4222 by default), nothing after it.
    async fn connect(authority: &str) -> Result<TcpSocket, String> {
        let authority = authority.trim_end_matches('/');
        if authority.contains(['/', '?', '#', '@']) {
            return Err(format!(
                "a nats:// url is nats://host:port, nothing more (got {authority:?}); \
                 credentials go in the options"
            ));
        }
        let address = if has_port(authority) {
            authority.to_owned()
        } else {
            format!("{authority}:4222")
        };
        let stream = TcpStream::connect(&address).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::ConnectionRefused {
                "connection refused".to_owned()
            } else {
                e.to_string()
            }
        })?;
        // Each operation is written whole as soon as it is encoded: waiting for more (Nagle)
        // would only delay a request's round trip.
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(TcpSocket {
            stream,
            read_buf: vec![0; TCP_READ_CHUNK].into_boxed_slice(),
            out: VecDeque::new(),
            out_bytes: 0,
        })
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Bytes, String>> {
        let mut buf = ReadBuf::new(&mut self.read_buf);
        match Pin::new(&mut self.stream).poll_read(cx, &mut buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e.to_string())),
            Poll::Ready(Ok(())) if buf.filled().is_empty() => {
                Poll::Ready(Err("connection closed by the server".to_owned()))
            }
            Poll::Ready(Ok(())) => Poll::Ready(Ok(Bytes::copy_from_slice(buf.filled()))),
        }
    }

    /// Writes queued bytes until everything is out or the socket would block.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), String>> {
        while let Some(front) = self.out.front_mut() {
            match Pin::new(&mut self.stream).poll_write(cx, front) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.to_string())),
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err("connection closed while writing".to_owned()))
                }
                Poll::Ready(Ok(n)) => {
                    self.out_bytes -= n;
                    if n == front.len() {
                        self.out.pop_front();
                    } else {
                        let _ = front.split_to(n);
                    }
                }
            }
        }
        Poll::Ready(Ok(()))
    }

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), String>> {
        if self.out_bytes < TCP_WRITE_HIGH_WATER {
            return Poll::Ready(Ok(()));
        }
        match self.poll_write_out(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending if self.out_bytes < TCP_WRITE_HIGH_WATER => Poll::Ready(Ok(())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), String>> {
        match self.poll_write_out(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut self.stream)
                .poll_flush(cx)
                .map_err(|e| e.to_string()),
            other => other,
        }
    }
}

/// True if `host[:port]` names a port; an IPv6 literal is bracketed (`[::1]:4222`).
fn has_port(authority: &str) -> bool {
    match authority.rsplit_once(':') {
        Some((host, port)) => {
            !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && (!host.contains(':') || host.ends_with(']'))
        }
        None => false,
    }
}

/// nats-server closes a client that does not read fast enough with the reason "Slow Consumer
/// (Pending Bytes)" or "Slow Consumer (Write Deadline)"; say what that means for the application.
fn slow_consumer_hint(reason: &str) -> &'static str {
    if reason.to_ascii_lowercase().contains("slow consumer") {
        ": the server cut this client for not reading fast enough; messages sent to its \
         subscriptions until it is back are lost"
    } else {
        ""
    }
}

/// The TLS settings of `wss://`: rustls with ring, chosen explicitly — when another crate in the
/// program also enables rustls's aws-lc-rs backend, letting rustls pick would panic. Made once.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots =
                rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("tls setup: {e}"))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Ok(Arc::new(config))
        })
        .clone()
}

fn describe(e: tungstenite::Error) -> String {
    use tungstenite::Error;
    match e {
        Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused".to_owned()
        }
        Error::Io(io) => io.to_string(),
        Error::Http(response) => format!(
            "the server answered HTTP {} instead of a websocket upgrade",
            response.status()
        ),
        Error::HttpFormat(e) => format!("{NOT_HTTP} ({e})"),
        Error::Protocol(tungstenite::error::ProtocolError::HttparseError(e)) => {
            format!("{NOT_HTTP} ({e})")
        }
        Error::Protocol(e) => format!("websocket protocol error: {e}"),
        Error::Url(e) => format!("bad url: {e}"),
        Error::Capacity(e) => format!("the server sent more than this client accepts: {e}"),
        other => other.to_string(),
    }
}

//! The native driver: tokio timers and a tokio-tungstenite WebSocket (`ws://`, and `wss://` with
//! rustls and the webpki root certificates).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
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

pub struct NativeSocket(WebSocketStream<MaybeTlsStream<TcpStream>>);

impl Driver for NativeDriver {
    type Socket = NativeSocket;
    type Sleep = Pin<Box<tokio::time::Sleep>>;

    fn connect(&self, url: &str) -> impl Future<Output = Result<NativeSocket, String>> + 'static {
        let url = url.to_owned();
        async move {
            // No size limit on incoming frames and messages (tungstenite's defaults are 16 MiB
            // and 64 MiB): nats-server sends a non-browser WebSocket client everything pending for
            // it as one frame, up to its `max_pending` (64 MiB by default), so a subscriber that
            // fell 16 MiB behind used to fail on that frame ("Space limit exceeded"), reconnect,
            // and lose what was published meanwhile. A browser accepts any size too.
            let config = WebSocketConfig::default()
                .max_frame_size(None)
                .max_message_size(None);
            let (ws, _response) = tokio_tungstenite::connect_async_tls_with_config(
                url,
                Some(config),
                true,
                Some(Connector::Rustls(tls_config()?)),
            )
            .await
            .map_err(describe)?;
            Ok(NativeSocket(ws))
        }
    }

    fn sleep(&self, duration: Duration) -> Self::Sleep {
        Box::pin(tokio::time::sleep(duration))
    }
}

impl Socket for NativeSocket {
    type Frame = Bytes;

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Bytes, String>> {
        loop {
            return match self.0.poll_next_unpin(cx) {
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
        self.0.poll_ready_unpin(cx).map_err(describe)
    }

    fn start_send(&mut self, data: Bytes) -> Result<(), String> {
        self.0
            .start_send_unpin(WsMessage::Binary(data))
            .map_err(describe)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), String>> {
        self.0.poll_flush_unpin(cx).map_err(describe)
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

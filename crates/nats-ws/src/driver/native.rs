//! The native driver: tokio timers and a tokio-tungstenite WebSocket (`ws://`, and `wss://` with
//! rustls and the webpki root certificates).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

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
            let (ws, _response) = tokio_tungstenite::connect_async_with_config(url, None, true)
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
                            "closed by the server (code {}: {})",
                            u16::from(f.code),
                            f.reason
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
        other => other.to_string(),
    }
}

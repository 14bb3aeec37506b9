//! The browser driver: a `web-sys` WebSocket with `arraybuffer` frames, `setTimeout` timers, and the
//! `online` / `visibilitychange` events as hints to check the connection at once.
//!
//! Every JS closure belongs to the socket or listener it was made for and is dropped with it: nothing
//! is leaked per reconnect.

use std::future::Future;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::channel::mpsc;
use futures::StreamExt;
use gloo_events::EventListener;
use gloo_timers::future::TimeoutFuture;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

use super::{Driver, Socket};
use crate::client::{run, Client};
use crate::error::ConnectionError;
use crate::options::Options;

/// Starts a client and returns at once; the connection comes up in the background (watch
/// [`Client::status_stream`]) and is retried on failure per the reconnect policy. Must be called
/// from within the browser's event loop (a `spawn_local` task or an event handler).
pub fn start(options: Options) -> Result<Client, ConnectionError> {
    Client::start(options, |shared| {
        let driver = BrowserDriver::new();
        wasm_bindgen_futures::spawn_local(run(shared, driver));
    })
}

/// Connects and waits for the first attempt: `Ok` once the handshake completed, `Err` with the
/// reason if it failed. Later disconnects are retried per the reconnect policy.
pub async fn connect(options: Options) -> Result<Client, ConnectionError> {
    start(options)?.first_attempt().await
}

struct BrowserDriver {
    wakes: mpsc::UnboundedReceiver<()>,
    _listeners: Vec<EventListener>,
}

impl BrowserDriver {
    fn new() -> Self {
        let (tx, wakes) = mpsc::unbounded();
        let mut listeners = Vec::new();
        if let Some(window) = web_sys::window() {
            let online = tx.clone();
            listeners.push(EventListener::new(&window, "online", move |_| {
                let _ = online.unbounded_send(());
            }));
            if let Some(document) = window.document() {
                let doc = document.clone();
                listeners.push(EventListener::new(
                    &document,
                    "visibilitychange",
                    move |_| {
                        if doc.visibility_state() == web_sys::VisibilityState::Visible {
                            let _ = tx.unbounded_send(());
                        }
                    },
                ));
            }
        }
        BrowserDriver {
            wakes,
            _listeners: listeners,
        }
    }
}

enum SocketEvent {
    Open,
    Frame(Vec<u8>),
    Closed(String),
}

/// A browser WebSocket and the closures that feed its events into a channel.
pub struct BrowserSocket {
    ws: WebSocket,
    events: mpsc::UnboundedReceiver<SocketEvent>,
    _on_open: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
    _on_error: Closure<dyn FnMut()>,
}

impl BrowserSocket {
    fn open(url: &str) -> Result<Self, String> {
        let ws = WebSocket::new(url).map_err(|e| js_detail(&e))?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let (tx, events) = mpsc::unbounded();
        let open_tx = tx.clone();
        let on_open = Closure::<dyn FnMut()>::new(move || {
            let _ = open_tx.unbounded_send(SocketEvent::Open);
        });
        let msg_tx = tx.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let data = e.data();
            let bytes = if let Some(buf) = data.dyn_ref::<js_sys::ArrayBuffer>() {
                js_sys::Uint8Array::new(buf).to_vec()
            } else if let Some(text) = data.as_string() {
                text.into_bytes()
            } else {
                return;
            };
            let _ = msg_tx.unbounded_send(SocketEvent::Frame(bytes));
        });
        let close_tx = tx.clone();
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
            let reason = e.reason();
            let detail = match (e.code(), reason.is_empty()) {
                (1006, _) => "the connection failed (code 1006)".to_owned(),
                (code, true) => format!("closed with code {code}"),
                (code, false) => format!("closed with code {code}: {reason}"),
            };
            let _ = close_tx.unbounded_send(SocketEvent::Closed(detail));
        });
        // `error` is always followed by `close`, which carries the detail; some browsers have been
        // seen to fire `error` alone, so it also ends the socket.
        let on_error = Closure::<dyn FnMut()>::new(move || {
            let _ = tx.unbounded_send(SocketEvent::Closed("the connection failed".to_owned()));
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        ws.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        Ok(BrowserSocket {
            ws,
            events,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
            _on_error: on_error,
        })
    }
}

impl Drop for BrowserSocket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        self.ws.set_onerror(None);
        // With a status code: a close frame without one is answered by nats-server with 1005,
        // a code that must not be sent, and the browser reports the close as failed.
        let _ = self.ws.close_with_code(1000);
    }
}

impl Driver for BrowserDriver {
    type Socket = BrowserSocket;
    type Sleep = TimeoutFuture;

    fn connect(&self, url: &str) -> impl Future<Output = Result<BrowserSocket, String>> + 'static {
        let opened = BrowserSocket::open(url);
        async move {
            let mut socket = opened?;
            match socket.events.next().await {
                Some(SocketEvent::Open) => Ok(socket),
                Some(SocketEvent::Closed(detail)) => Err(detail),
                Some(SocketEvent::Frame(_)) | None => Err("the connection failed".to_owned()),
            }
        }
    }

    fn sleep(&self, duration: Duration) -> TimeoutFuture {
        TimeoutFuture::new(crate::rt::timer_ms(duration))
    }

    #[cfg(feature = "nkeys")]
    fn sign(
        &self,
        request: crate::proto::SignRequest,
    ) -> impl Future<Output = Result<crate::proto::Signed, String>> + 'static {
        crate::auth::nkey::sign(request.seed, request.nonce)
    }

    fn poll_wake(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self.wakes.poll_next_unpin(cx) {
            Poll::Ready(Some(())) => Poll::Ready(()),
            _ => Poll::Pending,
        }
    }
}

impl Socket for BrowserSocket {
    type Frame = Vec<u8>;

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Vec<u8>, String>> {
        loop {
            return match self.events.poll_next_unpin(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Some(SocketEvent::Open)) => continue,
                Poll::Ready(Some(SocketEvent::Frame(data))) => Poll::Ready(Ok(data)),
                Poll::Ready(Some(SocketEvent::Closed(detail))) => Poll::Ready(Err(detail)),
                Poll::Ready(None) => Poll::Ready(Err("the connection closed".to_owned())),
            };
        }
    }

    // The browser buffers what `send` is given (`bufferedAmount`): always ready, nothing to flush.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), String>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(&mut self, data: Bytes) -> Result<(), String> {
        // A socket the server is closing takes `send` without an error, drops the data and logs
        // a warning to the console for each call; the close event that follows ends the socket
        // with its reason. Dropped here instead, without the console noise.
        if self.ws.ready_state() != WebSocket::OPEN {
            return Ok(());
        }
        self.ws.send_with_u8_array(&data).map_err(|e| js_detail(&e))
    }

    fn poll_flush(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), String>> {
        Poll::Ready(Ok(()))
    }
}

fn js_detail(value: &wasm_bindgen::JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        // Not `{:?}`: that brings wasm-bindgen's `debugString` into the glue for this alone.
        .unwrap_or_else(|| "the browser gave no reason".to_owned())
}

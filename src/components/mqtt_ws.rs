//! An MQTT 3.1.1 publisher over WebSocket, for a tab that plays a sensor: nats-server's MQTT
//! listener also answers on its WebSocket port at path `/mqtt` (subprotocol `mqtt`), so the tab
//! reaches it with the same server url as NATS.
//!
//! [`MqttWs::open`] opens the socket, [`MqttWs::connect`] sends CONNECT (clean session) and checks
//! the CONNACK, [`MqttWs::publish`] sends QoS 0 PUBLISHes, and a timer sends PINGREQ when nothing
//! went out, or nothing came in, for half the keepalive ([`ping_due`]): a publisher of QoS 0
//! hears nothing back otherwise, and would not notice a connection that died without a close.
//! Dropping it sends DISCONNECT and closes the socket.
//!
//! Packets are encoded and decoded by the `mqttbytes` crate (bytebeam's rumqtt codec; its only
//! dependency is `bytes`): this file never writes MQTT bytes by hand. Every JS closure belongs to
//! the struct and is dropped with it, as in nats-ws's browser driver: nothing is leaked.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use bytes::BytesMut;
use futures::channel::mpsc;
use futures::{FutureExt, StreamExt};
use gloo_timers::callback::Interval;
use mqttbytes::v4::{self, ConnAck, Connect, ConnectReturnCode, Disconnect, Packet, PingReq};
use mqttbytes::QoS;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

use crate::components::clock::monotonic_ms;

/// The WebSocket subprotocol nats-server (and every MQTT broker) expects.
pub const SUBPROTOCOL: &str = "mqtt";
/// The path of MQTT over WebSocket on nats-server's WebSocket port.
pub const PATH: &str = "/mqtt";
/// How long the server gets to open the socket and to answer CONNECT.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest packet accepted from the server (a CONNACK or PINGRESP is 2–4 bytes).
const MAX_INCOMING: usize = 64 * 1024;

/// Whether a PINGREQ is due at `now` (ms): nothing went out since `last_sent`, or nothing came in
/// since `last_received`, for half of `keep_ms`. MQTT asks a client to ping when it has sent
/// nothing; pinging when it has heard nothing too (as Paho does) is how a client that only
/// publishes at QoS 0, which the server never answers, finds out that its connection is gone.
pub fn ping_due(now: f64, last_sent: f64, last_received: f64, keep_ms: f64) -> bool {
    now - last_sent.min(last_received) >= keep_ms / 2.0
}

/// Why MQTT over WebSocket failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MqttError {
    #[error("cannot derive an MQTT over WebSocket url from {url:?}: {reason}")]
    InvalidUrl { url: String, reason: &'static str },
    #[error("could not open MQTT over WebSocket at {url} ({detail}): is the server up, with its mqtt listener on?")]
    Unavailable { url: String, detail: String },
    #[error("the server refused the MQTT connection: {reason} (CONNACK return code {code})")]
    Refused { code: u8, reason: &'static str },
    #[error("no CONNACK from {url} within {secs} s: is it an MQTT listener?")]
    NoConnAck { url: String, secs: u64 },
    #[error("the MQTT connection closed: {0}")]
    Closed(String),
    #[error("the server sent something that is not MQTT 3.1.1: {0}")]
    Protocol(String),
    #[error("not connected: call connect first")]
    NotConnected,
    #[error("could not encode the packet: {0}")]
    Encode(String),
}

/// The MQTT over WebSocket url of the NATS WebSocket server at `nats_url`: same scheme, host and
/// port, path [`PATH`].
pub fn mqtt_url(nats_url: &str) -> Result<String, MqttError> {
    let invalid = |reason| MqttError::InvalidUrl {
        url: nats_url.to_owned(),
        reason,
    };
    let trimmed = nats_url.trim();
    let (scheme, rest) = trimmed
        .split_once("://")
        .ok_or_else(|| invalid("no scheme (ws:// or wss://)"))?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "ws" && scheme != "wss" {
        return Err(invalid(
            "MQTT over WebSocket needs a ws:// or wss:// server",
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // Credentials in the url are for NATS; MQTT gets them in CONNECT.
    let host = authority.rsplit('@').next().unwrap_or_default();
    if host.is_empty() {
        return Err(invalid("no host"));
    }
    Ok(format!("{scheme}://{host}{PATH}"))
}

/// What a refused CONNACK's return code means (MQTT 3.1.1, 3.2.2.3).
pub fn refusal_reason(code: u8) -> &'static str {
    match code {
        1 => "the server does not accept MQTT 3.1.1 (protocol level 4)",
        2 => "the client identifier was rejected",
        3 => "the MQTT service is unavailable",
        4 => "bad user name or password",
        5 => "not authorized",
        _ => "unknown return code",
    }
}

/// The CONNACK's verdict: `Ok(session_present)` or why the server refused.
pub fn check_connack(connack: &ConnAck) -> Result<bool, MqttError> {
    let code = connack.code as u8;
    match connack.code {
        ConnectReturnCode::Success => Ok(connack.session_present),
        _ => Err(MqttError::Refused {
            code,
            reason: refusal_reason(code),
        }),
    }
}

/// CONNECT's settings.
#[derive(Clone)]
pub struct ConnectOptions {
    pub client_id: String,
    pub keep_alive: Duration,
    /// User name and password. nats-server also reads the password as a token.
    pub login: Option<(String, String)>,
}

/// The CONNECT packet for `options`: MQTT 3.1.1, clean session.
pub fn encode_connect(options: &ConnectOptions) -> Result<Vec<u8>, MqttError> {
    let mut connect = Connect::new(options.client_id.clone());
    connect.keep_alive = options.keep_alive.as_secs().min(u16::MAX.into()) as u16;
    connect.clean_session = true;
    if let Some((user, password)) = &options.login {
        connect.set_login(user.as_str(), password.as_str());
    }
    let mut buf = BytesMut::new();
    connect
        .write(&mut buf)
        .map_err(|e| MqttError::Encode(format!("{e:?}")))?;
    Ok(buf.to_vec())
}

/// A QoS 0 PUBLISH of `payload` to `topic`.
pub fn encode_publish(topic: &str, payload: &[u8]) -> Result<Vec<u8>, MqttError> {
    let mut buf = BytesMut::new();
    v4::Publish::new(topic, QoS::AtMostOnce, payload)
        .write(&mut buf)
        .map_err(|e| MqttError::Encode(format!("{e:?}")))?;
    Ok(buf.to_vec())
}

fn encode_simple(write: impl FnOnce(&mut BytesMut) -> Result<usize, mqttbytes::Error>) -> Vec<u8> {
    let mut buf = BytesMut::new();
    // PINGREQ and DISCONNECT are two fixed bytes: writing them cannot fail.
    let _ = write(&mut buf);
    buf.to_vec()
}

/// Reads every whole packet in `buf` (what is left is the start of the next one).
pub fn decode(buf: &mut BytesMut) -> Result<Vec<Packet>, MqttError> {
    let mut packets = Vec::new();
    loop {
        match v4::read(buf, MAX_INCOMING) {
            Ok(packet) => packets.push(packet),
            Err(mqttbytes::Error::InsufficientBytes(_)) => return Ok(packets),
            Err(mqttbytes::Error::InvalidConnectReturnCode(code)) => {
                return Err(MqttError::Refused {
                    code,
                    reason: refusal_reason(code),
                })
            }
            Err(e) => return Err(MqttError::Protocol(format!("{e:?}"))),
        }
    }
}

enum Event {
    Open,
    Packet(Packet),
    /// The socket closed (or the server broke the protocol): why.
    Closed(MqttError),
}

/// An MQTT connection over a browser WebSocket.
pub struct MqttWs {
    ws: WebSocket,
    url: String,
    events: mpsc::UnboundedReceiver<Event>,
    tx: mpsc::UnboundedSender<Event>,
    connected: bool,
    /// When a packet last went out, and when bytes last came in (ms since the epoch), for the
    /// keepalive.
    last_sent: Rc<Cell<f64>>,
    last_received: Rc<Cell<f64>>,
    /// When the PINGREQ still unanswered went out.
    ping_sent: Rc<Cell<Option<f64>>>,
    _keepalive: Option<Interval>,
    _on_open: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
    _on_error: Closure<dyn FnMut()>,
}

impl MqttWs {
    /// Opens a WebSocket to `url` with subprotocol `mqtt` and waits until it is open.
    pub async fn open(url: &str) -> Result<MqttWs, MqttError> {
        let unavailable = |detail: String| MqttError::Unavailable {
            url: url.to_owned(),
            detail,
        };
        let ws =
            WebSocket::new_with_str(url, SUBPROTOCOL).map_err(|e| unavailable(js_detail(&e)))?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let (tx, events) = mpsc::unbounded();
        let ping_sent = Rc::new(Cell::new(None));
        let last_received = Rc::new(Cell::new(monotonic_ms()));

        let open_tx = tx.clone();
        let on_open = Closure::<dyn FnMut()>::new(move || {
            let _ = open_tx.unbounded_send(Event::Open);
        });
        let msg_tx = tx.clone();
        let pong = ping_sent.clone();
        let received = last_received.clone();
        let mut incoming = BytesMut::new();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            received.set(monotonic_ms());
            let Some(buf) = e.data().dyn_ref::<js_sys::ArrayBuffer>().cloned() else {
                let _ = msg_tx.unbounded_send(Event::Closed(MqttError::Protocol(
                    "a text frame (MQTT is binary)".into(),
                )));
                return;
            };
            incoming.extend_from_slice(&js_sys::Uint8Array::new(&buf).to_vec());
            match decode(&mut incoming) {
                Ok(packets) => {
                    for packet in packets {
                        if packet == Packet::PingResp {
                            pong.set(None);
                        } else {
                            let _ = msg_tx.unbounded_send(Event::Packet(packet));
                        }
                    }
                }
                Err(e) => {
                    incoming.clear();
                    let _ = msg_tx.unbounded_send(Event::Closed(e));
                }
            }
        });
        let close_tx = tx.clone();
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
            let reason = e.reason();
            let detail = match (e.code(), reason.is_empty()) {
                (1006, _) => "the connection failed (code 1006)".to_owned(),
                (code, true) => format!("closed with code {code}"),
                (code, false) => format!("closed with code {code}: {reason}"),
            };
            let _ = close_tx.unbounded_send(Event::Closed(MqttError::Closed(detail)));
        });
        // `error` comes before `close`, which has the detail; it ends the socket by itself only
        // in browsers that never send the `close`.
        let error_tx = tx.clone();
        let on_error = Closure::<dyn FnMut()>::new(move || {
            let _ = error_tx.unbounded_send(Event::Closed(MqttError::Closed(
                "the connection failed".into(),
            )));
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        ws.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        let mut socket = MqttWs {
            ws,
            url: url.to_owned(),
            events,
            tx,
            connected: false,
            last_sent: Rc::new(Cell::new(monotonic_ms())),
            last_received,
            ping_sent,
            _keepalive: None,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
            _on_error: on_error,
        };
        let opened = futures::select! {
            event = socket.events.next() => event,
            _ = gloo_timers::future::sleep(HANDSHAKE_TIMEOUT).fuse() => {
                return Err(unavailable(format!("not open after {} s", HANDSHAKE_TIMEOUT.as_secs())));
            }
        };
        match opened {
            Some(Event::Open) => Ok(socket),
            Some(Event::Closed(MqttError::Closed(detail))) => Err(unavailable(detail)),
            Some(Event::Closed(e)) => Err(e),
            Some(Event::Packet(_)) | None => Err(unavailable("the connection failed".into())),
        }
    }

    /// The subprotocol the server chose (`mqtt`).
    pub fn protocol(&self) -> String {
        self.ws.protocol()
    }

    /// Sends CONNECT and waits for the CONNACK: `Ok(session_present)`, or why the server refused.
    /// Then PINGREQ goes out whenever nothing else did for half of `keep_alive`.
    pub async fn connect(&mut self, options: &ConnectOptions) -> Result<bool, MqttError> {
        let connect = encode_connect(options)?;
        self.send(&connect)?;
        let answer = futures::select! {
            event = self.events.next() => event,
            _ = gloo_timers::future::sleep(HANDSHAKE_TIMEOUT).fuse() => {
                return Err(MqttError::NoConnAck { url: self.url.clone(), secs: HANDSHAKE_TIMEOUT.as_secs() });
            }
        };
        let session_present = match answer {
            Some(Event::Packet(Packet::ConnAck(connack))) => check_connack(&connack)?,
            Some(Event::Packet(other)) => {
                return Err(MqttError::Protocol(format!(
                    "{other:?} where a CONNACK was due"
                )))
            }
            Some(Event::Closed(e)) => return Err(e),
            Some(Event::Open) | None => return Err(MqttError::Closed("before the CONNACK".into())),
        };
        self.connected = true;
        self.start_keepalive(options.keep_alive);
        Ok(session_present)
    }

    fn start_keepalive(&mut self, keep_alive: Duration) {
        if keep_alive.is_zero() {
            return;
        }
        let keep_ms = keep_alive.as_millis() as f64;
        let (ws, last_sent, last_received, ping_sent, tx) = (
            self.ws.clone(),
            self.last_sent.clone(),
            self.last_received.clone(),
            self.ping_sent.clone(),
            self.tx.clone(),
        );
        let ping = encode_simple(|b| PingReq.write(b));
        // Checked often enough that an idle connection pings at about half the keepalive.
        let every = (keep_alive / 6).max(Duration::from_secs(1));
        self._keepalive = Some(Interval::new(every.as_millis() as u32, move || {
            let now = monotonic_ms();
            if let Some(sent) = ping_sent.get() {
                if now - sent > keep_ms {
                    let _ = tx.unbounded_send(Event::Closed(MqttError::Closed(format!(
                        "no PINGRESP within {} s",
                        keep_ms / 1000.0
                    ))));
                    let _ = ws.close_with_code(1000);
                }
                return;
            }
            if ping_due(now, last_sent.get(), last_received.get(), keep_ms)
                && ws.send_with_u8_array(&ping).is_ok()
            {
                last_sent.set(now);
                ping_sent.set(Some(now));
            }
        }));
    }

    /// Publishes `payload` to `topic` at QoS 0 (no acknowledgement: sent is all it knows).
    pub fn publish(&self, topic: &str, payload: &[u8]) -> Result<(), MqttError> {
        if !self.connected {
            return Err(MqttError::NotConnected);
        }
        self.send(&encode_publish(topic, payload)?)
    }

    fn send(&self, bytes: &[u8]) -> Result<(), MqttError> {
        self.ws
            .send_with_u8_array(bytes)
            .map_err(|e| MqttError::Closed(js_detail(&e)))?;
        self.last_sent.set(monotonic_ms());
        Ok(())
    }

    /// Resolves when the connection ends by itself (server gone, keepalive missed, a protocol
    /// error), with why.
    pub async fn closed(&mut self) -> MqttError {
        while let Some(event) = self.events.next().await {
            if let Event::Closed(e) = event {
                return e;
            }
        }
        MqttError::Closed("the connection ended".into())
    }

    /// Sends DISCONNECT and closes the socket (what dropping it does).
    pub fn disconnect(self) {}
}

impl Drop for MqttWs {
    fn drop(&mut self) {
        if self.connected && self.ws.ready_state() == WebSocket::OPEN {
            let _ = self
                .ws
                .send_with_u8_array(&encode_simple(|b| Disconnect.write(b)));
        }
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        self.ws.set_onerror(None);
        let _ = self.ws.close_with_code(1000);
    }
}

fn js_detail(value: &wasm_bindgen::JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mqtt_url_is_the_nats_url_with_path_mqtt() {
        assert_eq!(
            mqtt_url("ws://127.0.0.1:8080").unwrap(),
            "ws://127.0.0.1:8080/mqtt"
        );
        assert_eq!(
            mqtt_url(" wss://nats.example:443/nats?x=1 ").unwrap(),
            "wss://nats.example:443/mqtt"
        );
        assert_eq!(
            mqtt_url("ws://user:pw@[::1]:8080/").unwrap(),
            "ws://[::1]:8080/mqtt"
        );
        assert!(matches!(
            mqtt_url("nats://127.0.0.1:4222"),
            Err(MqttError::InvalidUrl { .. })
        ));
        assert!(mqtt_url("127.0.0.1:8080").is_err());
        assert!(mqtt_url("ws:///mqtt").is_err());
    }

    #[test]
    fn a_ping_is_due_when_nothing_went_out_or_nothing_came_in_for_half_the_keepalive() {
        let keep = 30_000.0;
        // Idle both ways.
        assert!(ping_due(15_000.0, 0.0, 0.0, keep));
        assert!(!ping_due(14_999.0, 0.0, 0.0, keep));
        // Publishing every second, the server silent: a ping all the same.
        assert!(ping_due(15_000.0, 14_000.0, 0.0, keep));
        // Something came in (the last PINGRESP), nothing went out.
        assert!(ping_due(20_000.0, 0.0, 19_000.0, keep));
        // Busy both ways.
        assert!(!ping_due(20_000.0, 19_000.0, 18_000.0, keep));
    }

    #[test]
    fn connect_is_mqtt_3_1_1_with_a_clean_session_and_the_keepalive() {
        let bytes = encode_connect(&ConnectOptions {
            client_id: "via-tab-ab12".into(),
            keep_alive: Duration::from_secs(30),
            login: None,
        })
        .unwrap();
        let mut expected = vec![
            0x10, 24, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 30, 0, 12,
        ];
        expected.extend_from_slice(b"via-tab-ab12");
        assert_eq!(bytes, expected);

        let with_login = encode_connect(&ConnectOptions {
            client_id: "c".into(),
            keep_alive: Duration::from_secs(30),
            login: Some(("u".into(), "p".into())),
        })
        .unwrap();
        // user name and password flags, then both strings after the client id.
        assert_eq!(with_login[9], 0x02 | 0x80 | 0x40);
        assert!(with_login.ends_with(&[0, 1, b'c', 0, 1, b'u', 0, 1, b'p']));
    }

    #[test]
    fn publish_is_qos_0_with_the_topic_and_payload() {
        let bytes = encode_publish("device/temp", br#"{"temp": 21.37}"#).unwrap();
        let mut expected = vec![0x30, 2 + 11 + 15, 0, 11];
        expected.extend_from_slice(b"device/temp");
        expected.extend_from_slice(br#"{"temp": 21.37}"#);
        assert_eq!(bytes, expected);
        assert_eq!(encode_simple(|b| PingReq.write(b)), [0xc0, 0]);
        assert_eq!(encode_simple(|b| Disconnect.write(b)), [0xe0, 0]);
    }

    #[test]
    fn connacks_are_read_across_frames_and_refusals_say_why() {
        // CONNACK accepted, then PINGRESP, split in the middle of the second.
        let mut buf = BytesMut::from(&[0x20, 2, 0, 0, 0xd0][..]);
        let packets = decode(&mut buf).unwrap();
        assert_eq!(packets.len(), 1);
        let Packet::ConnAck(ack) = &packets[0] else {
            panic!("{packets:?}")
        };
        assert_eq!(check_connack(ack), Ok(false));
        buf.extend_from_slice(&[0]);
        assert_eq!(decode(&mut buf).unwrap(), vec![Packet::PingResp]);

        let mut refused = BytesMut::from(&[0x20, 2, 0, 5][..]);
        let Packet::ConnAck(ack) = decode(&mut refused).unwrap().remove(0) else {
            panic!()
        };
        let e = check_connack(&ack).unwrap_err();
        assert_eq!(
            e,
            MqttError::Refused {
                code: 5,
                reason: "not authorized"
            }
        );
        assert_eq!(
            e.to_string(),
            "the server refused the MQTT connection: not authorized (CONNACK return code 5)"
        );
        // A return code MQTT 3.1.1 does not define is a refusal too, not a crash.
        let mut odd = BytesMut::from(&[0x20, 2, 0, 77][..]);
        assert!(matches!(
            decode(&mut odd),
            Err(MqttError::Refused { code: 77, .. })
        ));
        // Garbage is a protocol error.
        let mut garbage = BytesMut::from(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01][..]);
        assert!(matches!(decode(&mut garbage), Err(MqttError::Protocol(_))));
    }
}

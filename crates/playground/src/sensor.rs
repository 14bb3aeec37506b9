//! The MQTT sensor's readings: JSON `{"temp": 21.37}` published to the MQTT topic `device/temp`,
//! which nats-server delivers on the NATS subject `device.temp`. `{"temperature": …}` is read too.

use serde::Deserialize;
use serde_json::value::RawValue;

/// The MQTT topic a sensor publishes to, and the NATS subject it arrives on.
pub const MQTT_TOPIC: &str = "device/temp";
pub const NATS_SUBJECT: &str = "device.temp";

/// One reading: the value, its text as the sensor sent it (`21.37`, not rounded), and the
/// sensor's id if the payload names one (`"sensor"`, as the app's in-browser sensor does).
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub value: f64,
    pub text: String,
    pub sensor: Option<String>,
}

#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(borrow)]
    temp: Option<&'a RawValue>,
    #[serde(borrow)]
    temperature: Option<&'a RawValue>,
    #[serde(borrow)]
    sensor: Option<&'a RawValue>,
}

/// Reads a payload: `{"temp": n}` or `{"temperature": n}` (a plain number is taken too). `None`
/// for anything else. The text is the number exactly as it was sent (`21.50` stays `21.50`).
pub fn parse(payload: &[u8]) -> Option<Reading> {
    // An object is read by its fields (serde would also read the struct from an array).
    let object = payload.trim_ascii_start().starts_with(b"{");
    let (raw, sensor) = if object {
        let wire = serde_json::from_slice::<Wire>(payload).ok()?;
        let raw = wire.temp.or(wire.temperature)?.get().to_owned();
        // Any other JSON there is no name: the reading stands without one. Kept whole (it is
        // compared, not shown).
        let sensor = (wire.sensor).and_then(|s| serde_json::from_str::<String>(s.get()).ok());
        (raw, sensor)
    } else {
        let raw = serde_json::from_slice::<&RawValue>(payload).ok()?;
        (raw.get().to_owned(), None)
    };
    // A JSON number only (not a string, object, …).
    let number = serde_json::from_str::<serde_json::Number>(&raw).ok()?;
    let value = number.as_f64().filter(|v| v.is_finite())?;
    Some(Reading {
        value,
        text: shown(raw.trim()),
        sensor,
    })
}

/// Longest text of a reading kept as sent; a longer number (any count of digits is valid JSON)
/// is cut, with `…`.
pub const MAX_TEXT: usize = 24;

/// `text` (a JSON number: ASCII) cut at [`MAX_TEXT`].
fn shown(text: &str) -> String {
    match text.get(..MAX_TEXT) {
        Some(head) if text.len() > MAX_TEXT => format!("{head}…"),
        _ => text.to_owned(),
    }
}

/// The JSON a sensor sends for `value`, to two decimals.
pub fn payload(value: f64) -> String {
    format!("{{\"temp\": {value:.2}}}")
}

/// [`payload`], naming the sensor that sent it (read back as [`Reading::sensor`]), so that its
/// own readings are told from another sensor's of the same value.
pub fn payload_from(value: f64, sensor: &str) -> String {
    let sensor = serde_json::to_string(sensor).unwrap_or_default();
    format!("{{\"temp\": {value:.2}, \"sensor\": {sensor}}}")
}

/// A plausible room temperature at step `n` of a sensor seeded with `seed`: a slow wave plus a
/// little noise, between about 19 and 24 °C.
pub fn simulated(seed: u64, n: u64) -> f64 {
    let mut z = seed.wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    let noise = ((z ^ (z >> 31)) % 1000) as f64 / 1000.0 - 0.5;
    21.5 + 2.0 * (n as f64 / 30.0).sin() + 0.4 * noise
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_spellings_and_keeps_the_text() {
        assert_eq!(
            parse(br#"{"temp": 21.37}"#),
            Some(Reading {
                value: 21.37,
                text: "21.37".into(),
                sensor: None,
            })
        );
        let named = payload_from(21.374, "tab-\"1\"");
        assert_eq!(named, r#"{"temp": 21.37, "sensor": "tab-\"1\""}"#);
        let read = parse(named.as_bytes()).expect("read");
        assert_eq!(
            (read.text.as_str(), read.sensor.as_deref()),
            ("21.37", Some("tab-\"1\""))
        );
        // Long names are kept whole.
        let long = "s".repeat(100);
        let read = parse(payload_from(20.0, &long).as_bytes()).expect("read");
        assert_eq!(read.sensor.as_deref(), Some(long.as_str()));
        // Not a string: no sensor, the reading all the same.
        assert_eq!(
            parse(br#"{"temp": 1, "sensor": 5}"#).map(|r| r.sensor),
            Some(None)
        );
        assert_eq!(
            parse(br#"{"temperature": 19}"#).map(|r| r.text),
            Some("19".into())
        );
        assert_eq!(parse(b"22.5").map(|r| r.value), Some(22.5));
        assert_eq!(parse(br#"{"humidity": 40}"#), None);
        assert_eq!(parse(b"warm"), None);
        assert_eq!(parse(br#"{"temp": "21.5"}"#), None);
        // Not an object with such a field, nor a number.
        assert_eq!(parse(b"[21.5, 0]"), None);
        assert_eq!(parse(b" [21.5]"), None);
        assert_eq!(
            parse(br#"{"temp": 21.50}"#).map(|r| r.text),
            Some("21.50".into())
        );
        assert_eq!(
            parse(b" 1e1 ").map(|r| (r.value, r.text)),
            Some((10.0, "1e1".into()))
        );
    }

    /// A valid number of a megabyte of digits is read, its text cut; one beyond f64 is not.
    #[test]
    fn a_huge_number_is_read_with_its_text_cut() {
        let long = format!("{{\"temp\": 0.{}1}}", "0".repeat(1 << 20));
        let reading = parse(long.as_bytes()).expect("a number");
        assert!(
            reading.value >= 0.0 && reading.value < 1e-300,
            "{}",
            reading.value
        );
        assert_eq!(reading.text, format!("0.{}…", "0".repeat(MAX_TEXT - 2)));
        assert_eq!(parse(b"1e999"), None);
    }

    #[test]
    fn a_sent_payload_reads_back_as_sent() {
        let sent = payload(21.374);
        assert_eq!(sent, r#"{"temp": 21.37}"#);
        assert_eq!(parse(sent.as_bytes()).map(|r| r.text), Some("21.37".into()));
        for n in 0..200 {
            let v = simulated(7, n);
            assert!((18.5..24.5).contains(&v), "{v}");
        }
    }
}

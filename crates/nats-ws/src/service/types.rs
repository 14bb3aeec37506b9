//! The JSON that `$SRV.PING|INFO|STATS` answer with (micro v1), in nats.go's field names and
//! omission rules, readable from every implementation: fields nats.js leaves out (`last_error`,
//! endpoint `metadata`) or sends as `null` read as their empty value, and nanosecond counts may
//! arrive as floats (nats.js computes averages without rounding).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `type` of a PING reply.
pub const PING_RESPONSE_TYPE: &str = "io.nats.micro.v1.ping_response";
/// `type` of an INFO reply.
pub const INFO_RESPONSE_TYPE: &str = "io.nats.micro.v1.info_response";
/// `type` of a STATS reply.
pub const STATS_RESPONSE_TYPE: &str = "io.nats.micro.v1.stats_response";

/// Key/value annotations of a service or endpoint. Sorted, so the JSON is stable.
pub type Metadata = BTreeMap<String, String>;

/// The reply to `$SRV.PING…`: who is there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingResponse {
    pub name: String,
    pub id: String,
    pub version: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: Metadata,
    #[serde(rename = "type")]
    pub kind: String,
}

/// The reply to `$SRV.INFO…`: the service and its endpoints. Read also from services that list
/// only `subjects` (nats.go's micro before endpoints were named, v1.22–v1.24): each subject is
/// then an endpoint named after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "InfoWire")]
pub struct InfoResponse {
    pub name: String,
    pub id: String,
    pub version: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: Metadata,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub description: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub endpoints: Vec<EndpointInfo>,
}

/// [`InfoResponse`] as read: with the `subjects` of the first micro versions.
#[derive(Deserialize)]
struct InfoWire {
    name: String,
    id: String,
    version: String,
    #[serde(default, deserialize_with = "null_as_default")]
    metadata: Metadata,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, deserialize_with = "null_as_default")]
    description: String,
    #[serde(default, deserialize_with = "null_as_default")]
    endpoints: Vec<EndpointInfo>,
    #[serde(default, deserialize_with = "null_as_default")]
    subjects: Vec<String>,
}

impl From<InfoWire> for InfoResponse {
    fn from(wire: InfoWire) -> Self {
        let endpoints = match wire.endpoints.is_empty() {
            true => (wire.subjects.into_iter())
                .map(|subject| EndpointInfo {
                    name: subject.clone(),
                    subject,
                    queue_group: String::new(),
                    metadata: Metadata::new(),
                })
                .collect(),
            false => wire.endpoints,
        };
        InfoResponse {
            name: wire.name,
            id: wire.id,
            version: wire.version,
            metadata: wire.metadata,
            kind: wire.kind,
            description: wire.description,
            endpoints,
        }
    }
}

/// One endpoint in an [`InfoResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointInfo {
    pub name: String,
    pub subject: String,
    /// Empty when the endpoint subscribes without a queue group.
    #[serde(default, deserialize_with = "null_as_default")]
    pub queue_group: String,
    /// Always written as an object (`{}` when empty).
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: Metadata,
}

/// The reply to `$SRV.STATS…`: request counts and timings per endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsResponse {
    pub name: String,
    pub id: String,
    pub version: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: Metadata,
    #[serde(rename = "type")]
    pub kind: String,
    /// When the service started (or was last reset), RFC 3339 in UTC.
    pub started: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub endpoints: Vec<EndpointStats>,
}

/// One endpoint in a [`StatsResponse`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointStats {
    pub name: String,
    pub subject: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub queue_group: String,
    #[serde(default)]
    pub num_requests: u64,
    /// Requests answered with an error (or whose answer could not be sent).
    #[serde(default)]
    pub num_errors: u64,
    /// The last error, `"<code>:<description>"` for an error reply; empty if none.
    #[serde(default, deserialize_with = "null_as_default")]
    pub last_error: String,
    /// From receipt to response, summed over all requests; nanoseconds on the wire.
    #[serde(default, with = "nanos")]
    pub processing_time: Duration,
    #[serde(default, with = "nanos")]
    pub average_processing_time: Duration,
    /// What the service's stats handler returned for this endpoint; omitted when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A duration as an integer count of nanoseconds; any JSON number (or null) reads.
mod nanos {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let nanos = match Option::<serde_json::Number>::deserialize(d)? {
            None => 0,
            // Integers exactly; a float rounded (negative or NaN reads as zero, `as` saturates).
            Some(n) => n.as_u64().unwrap_or_else(|| {
                n.as_f64()
                    .filter(|f| *f > 0.0)
                    .map_or(0, |f| f.round() as u64)
            }),
        };
        Ok(Duration::from_nanos(nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_what_nats_js_sends() {
        // nats.js 3.x: no last_error before an error, endpoint metadata absent, float averages.
        let stats: StatsResponse = serde_json::from_value(json!({
            "type": STATS_RESPONSE_TYPE, "name": "js", "id": "x", "version": "1.0.0",
            "started": "2024-01-01T00:00:00.000Z", "metadata": {},
            "endpoints": [{"name": "e", "subject": "e", "queue_group": "q",
                "average_processing_time": 1500.5, "num_errors": 0, "num_requests": 2,
                "processing_time": 3001}]
        }))
        .unwrap();
        let e = &stats.endpoints[0];
        assert_eq!(e.last_error, "");
        assert_eq!(e.average_processing_time, Duration::from_nanos(1501));
        assert_eq!(e.processing_time, Duration::from_nanos(3001));
        // Beyond f64's exact integers (2^53), integers still read exactly.
        let e: EndpointStats = serde_json::from_value(json!({"name": "e", "subject": "e",
            "processing_time": 9_007_199_254_740_993u64, "average_processing_time": -1}))
        .unwrap();
        assert_eq!(
            e.processing_time,
            Duration::from_nanos(9_007_199_254_740_993)
        );
        assert_eq!(e.average_processing_time, Duration::ZERO);
        let info: InfoResponse = serde_json::from_value(json!({
            "type": INFO_RESPONSE_TYPE, "name": "js", "id": "x", "version": "1.0.0",
            "description": "", "metadata": null,
            "endpoints": [{"name": "e", "subject": "e", "queue_group": "q", "metadata": null}]
        }))
        .unwrap();
        assert!(info.metadata.is_empty() && info.endpoints[0].metadata.is_empty());
        // The first micro versions listed subjects only.
        let old: InfoResponse = serde_json::from_value(json!({
            "type": INFO_RESPONSE_TYPE, "name": "old", "id": "x", "version": "0.1.0",
            "description": "", "subjects": ["old.a", "old.b"]
        }))
        .unwrap();
        let subjects: Vec<(&str, &str)> = (old.endpoints.iter())
            .map(|e| (e.name.as_str(), e.subject.as_str()))
            .collect();
        assert_eq!(subjects, [("old.a", "old.a"), ("old.b", "old.b")]);
        // Read back as written.
        assert_eq!(
            serde_json::from_value::<InfoResponse>(serde_json::to_value(&info).unwrap()).unwrap(),
            info
        );
    }

    #[test]
    fn writes_nats_go_shapes() {
        let e = EndpointStats {
            name: "e".into(),
            subject: "s".into(),
            queue_group: "q".into(),
            num_requests: 2,
            num_errors: 1,
            last_error: String::new(),
            processing_time: Duration::from_nanos(10),
            average_processing_time: Duration::from_nanos(5),
            data: None,
        };
        // last_error is always there; data only when set.
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"name": "e", "subject": "s", "queue_group": "q", "num_requests": 2,
                "num_errors": 1, "last_error": "", "processing_time": 10,
                "average_processing_time": 5})
        );
    }
}

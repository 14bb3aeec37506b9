//! The client alone, for the shipped-size comparison: a thin JS API over connect / publish /
//! subscribe / request / flush / close (and, with `size-kv`, KV put / get), i.e. what an app that
//! uses nats-ws for pub/sub pulls in. Compared with nats.js's `wsconnect` (and `Kvm`) bundled and
//! minified by esbuild.

use futures::StreamExt;
use wasm_bindgen::prelude::*;

fn err(e: impl std::fmt::Display) -> JsValue {
    JsValue::from_str(&e.to_string())
}

#[wasm_bindgen]
pub struct Nats(nats_ws::Client);

#[wasm_bindgen]
impl Nats {
    pub async fn connect(url: String) -> Result<Nats, JsValue> {
        nats_ws::connect(nats_ws::Options::new(url))
            .await
            .map(Nats)
            .map_err(err)
    }

    pub fn publish(&self, subject: &str, payload: &[u8]) -> Result<(), JsValue> {
        self.0.publish(subject, payload).map_err(err)
    }

    /// Calls `callback(subject, payload)` for each message.
    pub fn subscribe(&self, subject: &str, callback: js_sys::Function) -> Result<(), JsValue> {
        let mut sub = self.0.subscribe(subject).map_err(err)?;
        wasm_bindgen_futures::spawn_local(async move {
            while let Some(Ok(m)) = sub.next().await {
                let payload = js_sys::Uint8Array::from(&m.payload[..]);
                let _ = callback.call2(&JsValue::NULL, &m.subject.as_str().into(), &payload);
            }
        });
        Ok(())
    }

    pub async fn request(&self, subject: String, payload: Vec<u8>) -> Result<Vec<u8>, JsValue> {
        let m = self.0.request(&subject, payload).await.map_err(err)?;
        Ok(m.payload.to_vec())
    }

    pub async fn flush(&self) -> Result<(), JsValue> {
        self.0.flush().await.map_err(err)
    }

    pub fn close(&self) {
        self.0.close();
    }

    #[cfg(feature = "size-kv")]
    pub async fn kv_put(
        &self,
        bucket: String,
        key: String,
        value: Vec<u8>,
    ) -> Result<f64, JsValue> {
        let kv = self.0.jetstream().key_value(&bucket).await.map_err(err)?;
        kv.put(&key, value).await.map(|r| r as f64).map_err(err)
    }

    #[cfg(feature = "size-kv")]
    pub async fn kv_get(&self, bucket: String, key: String) -> Result<Option<Vec<u8>>, JsValue> {
        let kv = self.0.jetstream().key_value(&bucket).await.map_err(err)?;
        let entry = kv.get(&key).await.map_err(err)?;
        Ok(entry.map(|e| e.value.to_vec()))
    }
}

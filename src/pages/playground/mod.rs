//! `/playground`: the six classic NATS experiments, one card each, run with one click and watched
//! step by step (each step appears as it happens, with its time): hello world, a queue group, a
//! request/reply service (`math.sum`), a durable consumer (`playgrnd_stream`), a feature flag
//! (KV `configs_playgrnd` / `site_maintenance`) and MQTT ingress (`device/temp` → `device.temp`).
//!
//! Each card is its own file; `steps.rs` is the step list they share. Everything another program
//! sent is shown as text; a failure is a step or a message, never a broken page.

mod durable;
mod flag;
mod hello;
mod mqtt;
mod queue;
mod rpc;
pub(crate) mod steps;

use leptos::prelude::*;
use leptos_nats::use_nats;

#[component]
pub fn PlaygroundPage() -> impl IntoView {
    let nats = use_nats();
    view! {
        <section class="page-head">
            <h1>"Experiments"</h1>
            <p class="lede">
                "The classic NATS experiments, live against the server this page is connected to. "
                "Run one and watch each step as it happens; open a second window to see the others join in."
            </p>
        </section>
        {move || match nats.client.get() {
            Some(client) => view! {
                <flag::MaintenanceBanner client=client.clone()/>
                <div class="pg-grid">
                    <hello::HelloCard client=client.clone()/>
                    <queue::QueueCard client=client.clone()/>
                    <rpc::RpcCard client=client.clone()/>
                    <durable::DurableCard client=client.clone()/>
                    <flag::FlagCard client=client.clone()/>
                    <mqtt::MqttCard client/>
                </div>
            }
            .into_any(),
            None => view! { <p class="muted">"Not connected."</p> }.into_any(),
        }}
    }
}

// What an app that uses nats.js for pub/sub and KV over WebSocket bundles (size comparison only).
export { wsconnect } from "@nats-io/nats-core";
export { Kvm } from "@nats-io/kv";

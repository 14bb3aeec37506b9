// What an app that uses nats.js for pub/sub over WebSocket bundles (size comparison only).
export { wsconnect } from "@nats-io/nats-core";

// The nats.js side of tests/service.rs: npm `@nats-io/services` over `@nats-io/transport-node`
// (installed at the repo root by scripts/setup.sh), one JSON line per result on stdout.
//
//   node service_peer.mjs serve <nats-url>
//     starts service `js-peer` 2.1.0 (endpoints echo on js.echo, fail on js.fail), prints
//     {"id": <its id>} once subscribed, and serves until stdin closes.
//   node service_peer.mjs discover <nats-url> <service-name> <instances>
//     pings, asks INFO of, calls `<name>.echo` and `<name>.fail`, then asks STATS of the service,
//     waiting for <instances> answers each; prints {"ping", "info", "echo", "fail", "stats"}.

import { connect } from "@nats-io/transport-node";
import { ServiceError, Svcm } from "@nats-io/services";

const [mode, url, name, instances] = process.argv.slice(2);
const nc = await connect({ servers: url });
const svcm = new Svcm(nc);

if (mode === "serve") {
  const srv = await svcm.add({
    name: "js-peer",
    version: "2.1.0",
    description: "nats.js peer",
    metadata: { lang: "js" },
  });
  srv.addEndpoint("echo", {
    subject: "js.echo",
    metadata: { kind: "echo" },
    handler: (_err, msg) => msg.respond(msg.data),
  });
  srv.addEndpoint("fail", {
    subject: "js.fail",
    handler: (_err, msg) => msg.respondError(418, "i am a teapot", "tea"),
  });
  await nc.flush();
  console.log(JSON.stringify({ id: srv.info().id }));
  process.stdin.resume();
  process.stdin.on("end", async () => {
    await srv.stop();
    await nc.close();
  });
} else if (mode === "discover") {
  const client = svcm.client({ strategy: "count", maxMessages: Number(instances), maxWait: 5000 });
  const all = async (iter) => {
    const out = [];
    for await (const v of await iter) out.push(v);
    return out;
  };
  const ping = await all(client.ping(name));
  const info = await all(client.info(name));
  const echoed = await nc.request(`${name}.echo`, "hello from nats.js", { timeout: 5000 });
  const failed = await nc.request(`${name}.fail`, "", { timeout: 5000 });
  const error = ServiceError.toServiceError(failed);
  const stats = await all(client.stats(name));
  console.log(JSON.stringify({
    ping,
    info,
    echo: echoed.string(),
    fail: {
      is_service_error: ServiceError.isServiceError(failed),
      code: error?.code,
      message: error?.message,
      body: failed.string(),
    },
    stats,
  }));
  await nc.close();
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}

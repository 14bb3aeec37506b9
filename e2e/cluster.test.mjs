// A 3-node cluster loses the node every tab is on, with kill -9, while the tabs click and send.
// The app made its bucket and stream with 3 replicas (it sees a cluster in the server's INFO) and
// the killed node leads both (moved there first: the worst case, a leader election), so nothing
// can be written until the other two have elected a new leader. Every tab must be Live on one of
// the other nodes within 3 s (learned from INFO connect_urls: the tabs were given node 0 only),
// the counter must end exactly at +clicks, every chat message must be stored once and shown once
// in every tab, and when node 0 comes back nothing changes for the tabs. (Before nats-server
// 2.9.21 a clustered stream may accept compare-and-sets against an old revision,
// nats-server#4320: the tabs then send the clicks it wrote over again, and the test reports how
// many.) Prints the time from the kill to the first write to the bucket that the cluster took
// (BENCHMARKS.md records it).
//
// This file starts its own cluster (scripts/nats_test_control.py with NATS_TEST_CLUSTER=1) of the
// binary $NATS_SERVER_BIN, whatever server the other files share.

import assert from "node:assert/strict";
import { test } from "node:test";

import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";

import {
  consoleTail,
  counterSettled,
  counterValue,
  eventually,
  pause,
  rand,
  sendChat,
  useEnv,
  waitCount,
  waitFor,
  waitText,
} from "./lib.mjs";

const env = useEnv({ cluster: true });

const TABS = 3; // on /counter, and as many on /chat
const CLICKS = 30; // per counter tab, one every CLICK_EVERY ms
const CLICK_EVERY = 200;
const MESSAGES = 8; // per chat tab, one every SEND_EVERY ms
const SEND_EVERY = 600;
const KILL_AFTER = 1500; // ms into the clicking
const LIVE_WITHIN = 3000;

/** Records every change of the header's status (text and title, which names the server). */
const recordStatus = (page) =>
  page.evaluate(() => {
    const el = document.querySelector('[data-testid="status"]');
    const log = [];
    window.__statusLog = log;
    const note = () => log.push({ at: Date.now(), text: el.textContent.trim(), title: el.title });
    note();
    new MutationObserver(note).observe(el, { subtree: true, childList: true, characterData: true, attributes: true });
  });

const statusLog = (page) => page.evaluate(() => window.__statusLog);

/** Records every change of the counter's value and error line, for a failure's report. */
const recordCounter = (page) =>
  page.evaluate(() => {
    const card = document.querySelector("section.counter");
    const log = [];
    window.__counterLog = log;
    const read = () => {
      const value = card.querySelector('[data-testid="counter-value"]')?.textContent.trim();
      const error = card.querySelector(".error")?.textContent.trim() ?? "";
      return `${value}${error ? ` (${error})` : ""}`;
    };
    let last = "";
    const note = () => {
      const now = read();
      if (now !== last) log.push(`${new Date().toISOString().slice(11, 23)} ${(last = now)}`);
    };
    note();
    new MutationObserver(note).observe(card, { subtree: true, childList: true, characterData: true });
  });

const counterLog = (page) => page.evaluate(() => window.__counterLog.join("\n      "));

/**
 * The counter's last revision as the bucket's leader has it: a direct get may be answered by a
 * replica that has not caught up yet (right after an election, it does).
 */
const lastCounter = () => env.jsm.streams.getMessage("KV_via_config", { last_by_subj: "$KV.via_config.counter" });

/** The counter's value, from the leader. */
async function storedCounter() {
  const m = await lastCounter();
  return counterValue({ operation: "PUT", string: () => m.string() });
}

/** The stream's leader as the cluster reports it ("" during an election). */
async function leader(stream) {
  const info = await env.jsm.streams.info(stream);
  return info.cluster?.leader ?? "";
}

/** Steps the stream's leader down until `name` leads it (an election picks at random). */
async function moveLeader(stream, name) {
  for (let attempt = 0; attempt < 30; attempt++) {
    const now = await eventually(`${stream} has a leader`, async () => (await leader(stream)) || null);
    if (now === name) return attempt;
    // A step-down can be refused, or lost with no election following (seen on a loaded machine):
    // then the next attempt asks again.
    const asked = await env.nc
      .request(`$JS.API.STREAM.LEADER.STEPDOWN.${stream}`, "", { timeout: 5000 })
      .then((m) => m.json())
      .catch((e) => ({ error: { description: e.message } }));
    if (asked.error) {
      console.log(`${stream}: step-down not done (${asked.error.description}); asking again`);
      await pause(500);
      continue;
    }
    await eventually(
      `${stream} elected a new leader`,
      async () => {
        const next = await leader(stream).catch(() => "");
        return next && next !== now;
      },
      { timeout: 10_000 },
    ).catch((e) => console.log(`${e.message}; asking again`));
  }
  throw new Error(`${name} did not become the leader of ${stream} in 30 step-downs`);
}

test(
  `cluster: kill -9 of the node ${TABS} counter tabs and ${TABS} chat tabs are on; Live elsewhere within ${LIVE_WITHIN} ms, nothing lost`,
  { timeout: 240_000 },
  async (ctx) => {
    const nodes = await env.nodes();
    assert.equal(nodes.length, 3);
    const [a] = nodes;
    // Whatever fails below, the next test gets its three nodes: node 0 comes back if it is down.
    ctx.after(async () => {
      if ((await env.nodes())[0].running) return;
      await env.control("cluster/start?node=0");
      await eventually("node 0 rejoined", async () => (await fetch(`http://127.0.0.1:${a.http}/healthz`).catch(() => null))?.ok, {
        timeout: 30_000,
      });
    });
    const counters = await Promise.all(
      Array.from({ length: TABS }, (_, i) => env.tab({ identity: `clicker-${i + 1}`, path: "/counter" })),
    );
    const chats = await Promise.all(
      Array.from({ length: TABS }, (_, i) => env.tab({ identity: `talker-${i + 1}`, path: "/chat" })),
    );
    const tabs = [...counters, ...chats];
    for (const page of tabs) {
      const title = await page.getByTestId("status").getAttribute("title");
      assert.match(title, new RegExp(`^${a.name} `), `${page.label} is on node 0`);
    }

    // The pages created the bucket and the stream, replicated over the cluster.
    for (const stream of ["KV_via_config", "CHAT"]) {
      const info = await eventually(`the app created ${stream}`, () => env.jsm.streams.info(stream).catch(() => null));
      assert.equal(info.config.num_replicas, 3, `${stream}: replicas`);
    }
    const steps = [await moveLeader("KV_via_config", a.name), await moveLeader("CHAT", a.name)];
    console.log(`node 0 (${a.name}) leads KV_via_config and CHAT (after ${steps.join(" and ")} step-downs)`);

    // An outside client on node 1, to watch the bucket while node 0 is down.
    const watcher = await connect({ servers: `nats://127.0.0.1:${nodes[1].client}`, ...env.admin, name: "via-e2e-node1" });
    // Reads time out after 500 ms, so that a read sent during the election (unanswered) does
    // not hide the first write for the default 5 s.
    const kv = await new Kvm(jetstream(watcher, { timeout: 500 })).open("via_config");
    const watcherJsm = await jetstreamManager(watcher, { timeout: 1000 });
    const start = counterValue(await kv.get("counter"));
    for (const page of counters) await waitText(page, "counter-value", String(start));
    for (const page of tabs) await recordStatus(page);
    for (const page of counters) await recordCounter(page);
    const tag = rand();
    const texts = chats.flatMap((_, i) => Array.from({ length: MESSAGES }, (_, j) => `tab ${i + 1} msg ${j + 1} ${tag}`));
    const chatBefore = (await env.jsm.streams.info("CHAT")).state.last_seq;

    let killedAt = 0;
    let revisionAtKill = 0;
    const clicking = counters.map(async (page) => {
      for (let i = 0; i < CLICKS; i++) {
        await page.getByTestId("counter-inc").click();
        await pause(CLICK_EVERY);
      }
    });
    const sending = chats.map(async (page, i) => {
      for (let j = 0; j < MESSAGES; j++) {
        await sendChat(page, texts[i * MESSAGES + j]);
        await pause(SEND_EVERY);
      }
    });
    const killing = (async () => {
      await pause(KILL_AFTER);
      revisionAtKill = (await lastCounter()).seq;
      killedAt = Date.now();
      await env.control("cluster/kill?node=0");
    })();
    // The first write the cluster takes after the kill: the bucket's key, read from node 1.
    const firstWrite = (async () => {
      await killing;
      for (;;) {
        const entry = await kv.get("counter").catch(() => null);
        if (entry && entry.revision > revisionAtKill) return Date.now() - killedAt;
        if (Date.now() - killedAt > 60_000) return null;
        await pause(20);
      }
    })();
    // When the bucket's stream has a leader again (the election), as node 1 sees it.
    const elected = (async () => {
      await killing;
      for (;;) {
        const info = await watcherJsm.streams.info("KV_via_config").catch(() => null);
        const leader = info?.cluster?.leader;
        if (leader && leader !== a.name) return Date.now() - killedAt;
        if (Date.now() - killedAt > 60_000) return null;
        await pause(20);
      }
    })();
    await Promise.all([...clicking, ...sending, killing]);

    // Every tab back on node 1 or 2, within LIVE_WITHIN of the kill.
    const back = [];
    for (const page of tabs) {
      await waitFor(
        page,
        "Live on another node",
        (name) => {
          const el = document.querySelector('[data-testid="status"]');
          return el.textContent.trim() === "Live" && !el.title.startsWith(`${name} `);
        },
        a.name,
        { timeout: 30_000 },
      );
      const entry = (await statusLog(page)).find((e) => e.at >= killedAt && e.text === "Live" && !e.title.startsWith(`${a.name} `));
      back.push({ tab: page.label, ms: entry.at - killedAt, on: entry.title.split(" ")[0] });
    }
    const writeMs = await firstWrite;
    const electedMs = await elected;
    console.log(
      `after the kill: ${back.map((b) => `${b.tab} Live on ${b.on} after ${b.ms} ms`).join(", ")}; ` +
        `the bucket had a new leader after ${electedMs} ms, took its first write after ${writeMs} ms`,
    );
    for (const b of back) {
      assert.notEqual(b.on, a.name);
      assert.ok(b.ms <= LIVE_WITHIN, `${b.tab} was Live again ${b.ms} ms after the kill (at most ${LIVE_WITHIN})`);
    }
    assert.ok(writeMs !== null, "the cluster took a write within 60 s of the kill");

    // Nothing lost, nothing twice: the counter ... Before nats-server 2.9.21 the cluster may
    // accept a write built on an older value and so drop clicks already settled (19 of 90 once,
    // on a loaded machine, before the tabs sent such clicks again): the tabs see it in the value
    // and write them again, so the counter gets there all the same.
    const since = (t) => `${Date.now() - t} ms`;
    let t = Date.now();
    const want = start + TABS * CLICKS;
    const allSettled = async () => {
      for (const page of counters) {
        await counterSettled(page).catch((e) => {
          throw new Error(`${e.message}\n    ${consoleTail(page)}`);
        });
      }
    };
    await allSettled();
    const firstSettled = await storedCounter();
    const written = since(t);
    await eventually("the counter holds every click", async () => (await storedCounter()) === want, { timeout: 30_000 }).catch(
      async (e) => {
        const shown = await Promise.all(counters.map((page) => page.getByTestId("counter-value").textContent()));
        throw new Error(`${e.message}: ${await storedCounter()}, want ${want} (the tabs show ${shown.join(", ")})`);
      },
    );
    await allSettled();
    t = Date.now();
    const stored = await storedCounter();
    assert.equal(stored, want, "the counter after every click, once all is settled");
    if (firstSettled !== want) {
      console.log(`nats-server ${env.nc.info.version}: ${want - firstSettled} clicks written over after they settled, sent again`);
    }
    // Shown soon: a watcher's new consumer waits for the election, not for the delete of its old
    // one any more (that took 11–27 s after the kill). Its create can be placed on the dead node,
    // still a peer of the stream, or sent to a dead JetStream leader, and then gets no answer: it
    // is tried again after 1 s (it waited 5 s before, and three such in a row once showed the
    // count 19 s after the kill). The bound is generous; the time is logged below.
    for (const page of counters) {
      await waitText(page, "counter-value", String(stored), { timeout: 25_000 }).catch(async (e) => {
        const consumers = [];
        for await (const c of env.jsm.consumers.list("KV_via_config")) {
          consumers.push(`${c.name} delivered ${c.delivered.stream_seq} pending ${c.num_pending} ack_pending ${c.num_ack_pending} on ${c.cluster?.leader} push_bound ${c.push_bound} created ${c.created}`);
        }
        const text = await page.evaluate(() => document.querySelector("main")?.innerText);
        const shown = await counterLog(page);
        throw new Error(
          `${e.message}\n    ${consoleTail(page, 30)}\n consumers:\n  ${consumers.join("\n  ")}\n page: ${text}\n` +
            `    the value and error shown (killed at ${new Date(killedAt).toISOString().slice(11, 23)}):\n      ${shown}`,
        );
      });
    }
    const counted = since(t);
    t = Date.now();
    // ... and the chat: stored once each, shown once in every tab.
    for (const page of chats) {
      await waitFor(page, "no message left sending", () => document.querySelectorAll(".message.pending").length === 0, undefined, {
        timeout: 60_000,
      });
      for (const text of texts) await waitCount(page, "chat-message", text, 1);
    }
    const { state } = await env.jsm.streams.info("CHAT");
    const copies = Object.fromEntries(texts.map((t) => [t, 0]));
    for (let seq = chatBefore + 1; seq <= state.last_seq; seq++) {
      const m = await env.jsm.streams.getMessage("CHAT", { seq }).catch(() => null);
      const text = m && JSON.parse(m.string()).text;
      if (text in copies) copies[text]++;
    }
    assert.deepEqual(
      Object.entries(copies).filter(([, n]) => n !== 1),
      [],
      "copies in stream CHAT of each message sent",
    );

    console.log(`once the clicking ended: every click written in ${written}, shown in every tab ${counted} later, every chat message shown ${since(t)} later`);

    // Node 0 comes back and rejoins; the tabs stay where they are, Live, and keep working.
    const settled = Date.now();
    await env.control("cluster/start?node=0");
    await eventually("node 0 rejoined (its JetStream is current)", async () => {
      const res = await fetch(`http://127.0.0.1:${a.http}/healthz`).catch(() => null);
      return res?.ok;
    }, { timeout: 30_000 });
    await counters[0].getByTestId("counter-inc").click();
    for (const page of counters) await waitText(page, "counter-value", String(stored + 1));
    assert.equal(await storedCounter(), stored + 1);
    for (const page of tabs) {
      const changes = (await statusLog(page)).filter((e) => e.at >= settled && e.text !== "Live");
      assert.deepEqual(changes, [], `${page.label}: no status change once node 0 is back`);
    }
    await watcher.close();
  },
);

test("cluster: the agent and its leaf node stay joined when the hub node they are on dies", { timeout: 180_000 }, async (t) => {
  const nodes = await env.nodes();
  const [a] = nodes;
  assert.ok(nodes.every((n) => n.running), "every node is up (the test before brought node 0 back)");
  // The agent on node 0's client port; its leaves join node 0's leafnodes port.
  const agent = await env.agent({ maxLeaves: 1 });
  const added = JSON.parse((await env.nc.request("via.leaf.add", "{}", { timeout: 30_000 })).string());
  const leaf = added.leaf;
  assert.ok(leaf?.name, `via.leaf.add: ${JSON.stringify(added)}`);
  const leafz = async (node) => {
    const res = await fetch(`http://127.0.0.1:${node.http}/leafz`).catch(() => null);
    return res?.ok ? (await res.json()).leafs ?? [] : [];
  };
  await eventually("the leaf joined node 0", async () => (await leafz(a)).length === 1, { timeout: 30_000 });

  const leafClient = await connect({ servers: `nats://127.0.0.1:${leaf.client_port}`, name: "via-e2e-leaf-client" });
  const hubClient = await connect({ servers: `nats://127.0.0.1:${nodes[1].client}`, ...env.admin, name: "via-e2e-node1" });
  t.after(() => Promise.all([leafClient.close(), hubClient.close()]));

  const killedAt = Date.now();
  await env.control("cluster/kill?node=0");
  // The hub told the leaf its other nodes' leafnode urls (and kept the credentials of the url it
  // was given): it is back on node 1 or 2 by itself.
  const where = await eventually(
    "the leaf joined node 1 or 2",
    async () => {
      for (const node of nodes.slice(1)) if ((await leafz(node)).length === 1) return node.name;
      return null;
    },
    { timeout: 30_000, every: 200 },
  );
  const rejoinMs = Date.now() - killedAt;
  // A message from the leaf's own client reaches a client of the cluster, as before.
  const subject = `leaf.check.${rand()}`;
  const sub = hubClient.subscribe(subject, { max: 1 });
  await hubClient.flush();
  await eventually(
    "a message from the leaf's client on node 1",
    async () => {
      leafClient.publish(subject, "across");
      await leafClient.flush();
      return sub.getReceived() > 0;
    },
    { timeout: 20_000, every: 250 },
  );
  // The agent moved to another node too: it still answers, and removes its leaf.
  const list = JSON.parse((await env.nc.request("via.leaf.list", "{}", { timeout: 10_000 })).string());
  assert.deepEqual(list.leaves.map((l) => l.name), [leaf.name]);
  console.log(`the leaf rejoined the cluster on ${where} ${rejoinMs} ms after its node was killed`);

  await env.control("cluster/start?node=0");
  await env.nc.request("via.leaf.remove", JSON.stringify({ name: leaf.name }), { timeout: 30_000 });
  await agent.stop();
});

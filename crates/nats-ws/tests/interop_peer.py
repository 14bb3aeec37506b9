#!/usr/bin/env python3
"""A nats-py peer for the interop tests in interop.rs and interop_js.rs: a NATS client we did not write.

It talks to the same nats-server as the Rust client, over the plain TCP client port.

Protocol with the test:
  * The test writes one JSON line (the "spec") to stdin; it is read before connecting.
  * Payloads travel as hex strings, both in the spec and in the output, so arbitrary bytes survive.
  * Headers travel as lists of [name, value] pairs. nats-py takes and gives a dict, so one name can
    carry only one value on this side.
  * Every output line is flushed at once. `ready` means: subscribed and flushed (`flush_all`), so
    the server knows about the subscription and anything published from now on is delivered.
  * Received messages are printed as one JSON line each:
    {"subject": ..., "reply": ... or null, "headers": [[name, value], ...] or null, "payload_hex": ...}

Subcommands:
  subscribe --count N   prints `ready`, then the first N messages on the subject, then exits.
  publish               publishes spec["messages"] (each {headers?, payload_hex, reply?}), flushes,
                        prints `done`.
  responder --count N   prints `ready`; for each request prints it, then replies with
                        spec["reply_headers"] plus `X-Echo-Seq` (the request's `X-Seq`, if any) and
                        the payload spec["reply_prefix_hex"] + the request payload reversed. Exits
                        after N requests.
  requester             sends spec["requests"] (each {headers?, payload_hex}) concurrently and prints
                        the replies, one line each, in the order of the requests.

JetStream and KV subcommands (used by interop_js.rs; --subject is only a label there, everything
else comes from the spec):
  kv-write              creates spec["bucket"] (history spec["history"]) or, with spec["create"] false,
                        binds to it; runs spec["ops"] in order (each {op: put|create|update|delete|
                        purge, key, value_hex?, last?}) and prints one line per op:
                        {"op", "key", "revision"} (revision null for delete/purge, which return
                        nothing in nats-py) or {"op", "key", "error": <nats-py exception class>};
                        then `done`.
  kv-read               binds to spec["bucket"]; prints {"status": {...}}, one {"get": key, ...} line
                        per spec["get"] key, one {"history": key, "entries"|"error"} line per
                        spec["history"] key, {"keys": [...sorted]}; then starts spec["watches"]
                        (each {name, filter, initial, live}) and prints each watcher's `initial`
                        entries, then its marker ({"watch": name, "marker": "initial-done"}), then
                        `ready`, then `live` more entries of each watcher (watcher by watcher).
                        nats-py can give its marker before the last initial entries (it asks the
                        consumer's pending count while they are on their way and counts none
                        received yet): the marker is printed after the `initial` entries, wherever
                        it came among them; a history that found nothing for a key the stream
                        holds is asked again (nats-py's history stops at that marker).
                        Entries: {"watch", "key", "revision", "delta", "operation", "value_hex"},
                        operation as nats-py gives it (null for a put, "DEL", "PURGE").
  js-publish            creates stream spec["stream"] on spec["subjects"] (unless spec["create"] is
                        false), publishes spec["messages"] (each {subject, headers?, payload_hex})
                        with js.publish and prints each ack {"stream", "seq", "duplicate"}; `done`.
  js-consume            on spec["stream"] filtered by spec["filter"]: a durable pull consumer
                        (spec["durable"]) fetches and ack_syncs spec["count"] messages, printed as
                        {"via": "pull", ...js message}; then {"pull_info": {...}}; then an ordered push
                        consumer (js.subscribe(ordered_consumer=True)) prints spec["count"] messages
                        ({"via": "ordered", ...}), `ready`, and spec["live"] more.
                        JS messages: the usual message fields plus "stream", "stream_seq",
                        "consumer_seq", "num_pending", "num_delivered".

Everything is bounded by --timeout seconds; any failure exits non-zero with a traceback on stderr.
"""

import argparse
import asyncio
import json
import sys

import nats
import nats.js.errors

from nats_py_flush import flush_all


def emit(obj):
    if isinstance(obj, str):
        line = obj
    else:
        line = json.dumps(obj, ensure_ascii=True, separators=(",", ":"))
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def describe(msg):
    return {
        "subject": msg.subject,
        "reply": msg.reply or None,
        "headers": None if msg.headers is None else [[k, v] for k, v in msg.headers.items()],
        "payload_hex": bytes(msg.data).hex(),
    }


def headers_of(spec_item):
    pairs = spec_item.get("headers")
    if pairs is None:
        return None
    return {name: value for name, value in pairs}


async def subscribe(nc, args, spec):
    sub = await nc.subscribe(args.subject)
    await flush_all(nc)
    emit("ready")
    for _ in range(args.count):
        msg = await sub.next_msg(timeout=args.timeout)
        emit(describe(msg))
    await sub.unsubscribe()


async def publish(nc, args, spec):
    for item in spec["messages"]:
        await nc.publish(
            args.subject,
            bytes.fromhex(item["payload_hex"]),
            reply=item.get("reply") or "",
            headers=headers_of(item),
        )
    await flush_all(nc)
    emit("done")


async def responder(nc, args, spec):
    sub = await nc.subscribe(args.subject)
    await flush_all(nc)
    emit("ready")
    prefix = bytes.fromhex(spec["reply_prefix_hex"])
    for _ in range(args.count):
        msg = await sub.next_msg(timeout=args.timeout)
        emit(describe(msg))
        headers = {name: value for name, value in spec["reply_headers"]}
        seq = (msg.headers or {}).get("X-Seq")
        if seq is not None:
            headers["X-Echo-Seq"] = seq
        await nc.publish(msg.reply, prefix + bytes(msg.data)[::-1], headers=headers)
    await flush_all(nc)
    await sub.unsubscribe()


async def requester(nc, args, spec):
    replies = await asyncio.gather(
        *(
            nc.request(
                args.subject,
                bytes.fromhex(item["payload_hex"]),
                timeout=args.timeout,
                headers=headers_of(item),
            )
            for item in spec["requests"]
        )
    )
    for reply in replies:
        emit(describe(reply))


def kv_entry(name, entry):
    if entry is None:
        return {"watch": name, "marker": "initial-done"}
    return {
        "watch": name,
        "key": entry.key,
        "revision": entry.revision,
        "delta": entry.delta,
        "operation": entry.operation,
        "value_hex": bytes(entry.value or b"").hex(),
    }


async def kv_write(nc, args, spec):
    js = nc.jetstream()
    if spec.get("create", True):
        kv = await js.create_key_value(bucket=spec["bucket"], history=spec.get("history", 1))
    else:
        kv = await js.key_value(spec["bucket"])
    for item in spec["ops"]:
        op, key = item["op"], item["key"]
        value = bytes.fromhex(item.get("value_hex", ""))
        try:
            if op == "put":
                revision = await kv.put(key, value)
            elif op == "create":
                revision = await kv.create(key, value)
            elif op == "update":
                revision = await kv.update(key, value, last=item["last"])
            elif op == "delete":
                await kv.delete(key)
                revision = None
            elif op == "purge":
                await kv.purge(key)
                revision = None
            else:
                raise ValueError(f"unknown kv op {op!r}")
        except nats.js.errors.Error as err:
            emit({"op": op, "key": key, "error": type(err).__name__})
            continue
        emit({"op": op, "key": key, "revision": revision})
    emit("done")


async def history(js, kv, bucket, key):
    """kv.history(key), asked again (up to 5 times) when it finds nothing for a key the stream
    holds a message of: nats-py ends a history at its watcher's marker, which it can give before
    the entries on their way (see kv-read above), and then says NoKeysError."""
    for attempt in range(5):
        try:
            return await kv.history(key)
        except nats.js.errors.NoKeysError:
            try:
                await js.get_last_msg(f"KV_{bucket}", f"$KV.{bucket}.{key}")
            except nats.js.errors.NotFoundError:
                raise nats.js.errors.NoKeysError
            if attempt == 4:
                raise


async def settled_keys(kv):
    """kv.keys(), sorted, read until two readings agree (at most 5): nats-py ends it at its
    watcher's marker too, which can come before keys on their way. The bucket is not written
    meanwhile, so two equal readings are what it holds."""
    async def read():
        try:
            return sorted(await kv.keys())
        except nats.js.errors.NoKeysError:
            return []

    last = await read()
    for _ in range(4):
        keys = await read()
        if keys == last:
            break
        last = keys
    return last


async def kv_read(nc, args, spec):
    js = nc.jetstream()
    kv = await js.key_value(spec["bucket"])
    status = await kv.status()
    emit({"status": {"bucket": status.bucket, "values": status.values, "history": status.history}})
    for key in spec.get("get", []):
        try:
            entry = await kv.get(key)
            emit({"get": key, "revision": entry.revision, "value_hex": bytes(entry.value or b"").hex()})
        except nats.js.errors.KeyNotFoundError as err:
            # A deleted key also lands here; err.op says which marker hid it.
            emit({"get": key, "error": type(err).__name__, "op": err.op})
    for key in spec.get("history", []):
        try:
            entries = await history(js, kv, spec["bucket"], key)
            emit({"history": key, "entries": [kv_entry(None, e) for e in entries]})
        except nats.js.errors.NoKeysError as err:
            emit({"history": key, "error": type(err).__name__})
    emit({"keys": await settled_keys(kv)})
    watchers = []
    for w in spec.get("watches", []):
        watchers.append((w["name"], await kv.watch(w["filter"]), w.get("live", 0)))
    for (name, watcher, _), w in zip(watchers, spec.get("watches", [])):
        entries, marked = 0, False
        while entries < w["initial"] or not marked:
            entry = await watcher.updates(timeout=args.timeout)
            if entry is None:
                marked = True
            else:
                entries += 1
                emit(kv_entry(name, entry))
        emit(kv_entry(name, None))
    emit("ready")
    for name, watcher, live in watchers:
        for _ in range(live):
            emit(kv_entry(name, await watcher.updates(timeout=args.timeout)))
    for _, watcher, _ in watchers:
        await watcher.stop()


async def js_publish(nc, args, spec):
    js = nc.jetstream()
    if spec.get("create", True):
        await js.add_stream(name=spec["stream"], subjects=spec["subjects"])
    for item in spec["messages"]:
        ack = await js.publish(
            item["subject"], bytes.fromhex(item["payload_hex"]), headers=headers_of(item)
        )
        emit({"stream": ack.stream, "seq": ack.seq, "duplicate": bool(ack.duplicate)})
    emit("done")


def describe_js(via, msg):
    meta = msg.metadata
    out = {"via": via}
    out.update(describe(msg))
    out.update(
        {
            "stream": meta.stream,
            "stream_seq": meta.sequence.stream,
            "consumer_seq": meta.sequence.consumer,
            "num_pending": meta.num_pending,
            "num_delivered": meta.num_delivered,
        }
    )
    return out


async def js_consume(nc, args, spec):
    js = nc.jetstream()
    count = spec["count"]
    psub = await js.pull_subscribe(spec["filter"], durable=spec["durable"], stream=spec["stream"])
    pulled = []
    while len(pulled) < count:
        for msg in await psub.fetch(batch=count - len(pulled), timeout=args.timeout):
            await msg.ack_sync(timeout=args.timeout)
            pulled.append(msg)
    for msg in pulled:
        emit(describe_js("pull", msg))
    info = await psub.consumer_info()
    emit(
        {
            "pull_info": {
                "name": info.name,
                "num_pending": info.num_pending,
                "num_ack_pending": info.num_ack_pending,
                "delivered_stream_seq": info.delivered.stream_seq,
                "ack_floor_stream_seq": info.ack_floor.stream_seq,
            }
        }
    )
    await psub.unsubscribe()
    sub = await js.subscribe(spec["filter"], stream=spec["stream"], ordered_consumer=True)
    for _ in range(count):
        emit(describe_js("ordered", await sub.next_msg(timeout=args.timeout)))
    emit("ready")
    for _ in range(spec.get("live", 0)):
        emit(describe_js("ordered", await sub.next_msg(timeout=args.timeout)))
    await sub.unsubscribe()


COMMANDS = {
    "subscribe": subscribe,
    "publish": publish,
    "responder": responder,
    "requester": requester,
    "kv-write": kv_write,
    "kv-read": kv_read,
    "js-publish": js_publish,
    "js-consume": js_consume,
}


async def main(args, spec):
    nc = await nats.connect(
        servers=[args.server],
        allow_reconnect=False,
        connect_timeout=args.timeout,
        name="interop-peer-" + args.command,
    )
    try:
        await COMMANDS[args.command](nc, args, spec)
    finally:
        await nc.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("--server", required=True)
    parser.add_argument("--subject", required=True)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()
    line = sys.stdin.buffer.readline()
    spec = json.loads(line) if line.strip() else {}
    asyncio.run(asyncio.wait_for(main(args, spec), timeout=args.timeout * 2))

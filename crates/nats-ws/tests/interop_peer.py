#!/usr/bin/env python3
"""A nats-py peer for the interop tests in interop.rs: a NATS client we did not write.

It talks to the same nats-server as the Rust client, over the plain TCP client port.

Protocol with the test:
  * The test writes one JSON line (the "spec") to stdin; it is read before connecting.
  * Payloads travel as hex strings, both in the spec and in the output, so arbitrary bytes survive.
  * Headers travel as lists of [name, value] pairs. nats-py takes and gives a dict, so one name can
    carry only one value on this side.
  * Every output line is flushed at once. `ready` means: subscribed and flushed, so the server
    knows about the subscription and anything published from now on is delivered.
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

Everything is bounded by --timeout seconds; any failure exits non-zero with a traceback on stderr.
"""

import argparse
import asyncio
import json
import sys

import nats


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
    await nc.flush()
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
    await nc.flush()
    emit("done")


async def responder(nc, args, spec):
    sub = await nc.subscribe(args.subject)
    await nc.flush()
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
    await nc.flush()
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


COMMANDS = {
    "subscribe": subscribe,
    "publish": publish,
    "responder": responder,
    "requester": requester,
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

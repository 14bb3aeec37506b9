#!/usr/bin/env python3
"""The nats-py side of tests/service.rs (`nats.micro`, nats-py >= 2.9), one JSON line per result.

  service_peer.py serve <nats-url>
      starts service `py-peer` 3.0.0 (endpoint `upper` on py.upper, `fail` on py.fail), prints
      {"id": <its id>} once subscribed, and serves until stdin closes.
  service_peer.py read <nats-url> <service-name>
      asks $SRV.PING|INFO|STATS.<name> and reads each answer with nats.micro's own types
      (`ServicePing|ServiceInfo|ServiceStats.from_dict`); prints what they read back (`to_dict`),
      or the error they raised.
"""

import asyncio
import json
import sys

import nats
from nats.micro import add_service
from nats.micro.service import EndpointConfig, ServiceConfig, ServiceInfo, ServicePing, ServiceStats
from nats_py_flush import flush_all


def emit(value):
    print(json.dumps(value, default=str), flush=True)


async def serve(nc):
    svc = await add_service(
        nc, ServiceConfig(name="py-peer", version="3.0.0", description="nats-py peer", metadata={"lang": "py"})
    )

    async def upper(req):
        await req.respond(req.data.upper())

    async def fail(req):
        await req.respond_error("503", "py is busy", b"later")

    await svc.add_endpoint(EndpointConfig(name="upper", subject="py.upper", handler=upper))
    await svc.add_endpoint(EndpointConfig(name="fail", subject="py.fail", handler=fail))
    await flush_all(nc)
    emit({"id": svc.id})
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await svc.stop()


async def read(nc, name):
    out = {}
    for verb, kind in (("PING", ServicePing), ("INFO", ServiceInfo), ("STATS", ServiceStats)):
        msg = await nc.request(f"$SRV.{verb}.{name}", b"", timeout=5)
        try:
            out[verb] = kind.from_dict(json.loads(msg.data)).to_dict()
        except Exception as e:  # the test asserts what nats-py could not read
            out[verb] = {"error": f"{type(e).__name__}: {e}"}
    emit(out)


async def main():
    mode, url = sys.argv[1], sys.argv[2]
    nc = await nats.connect(url)
    try:
        if mode == "serve":
            await serve(nc)
        elif mode == "read":
            await read(nc, sys.argv[3])
        else:
            sys.exit(f"unknown mode {mode}")
    finally:
        await nc.close()


asyncio.run(main())

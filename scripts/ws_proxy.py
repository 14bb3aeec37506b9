#!/usr/bin/env python3
"""A hostile network between WebSocket clients and a nats-server WebSocket port, for tests.

Python's standard library only: asyncio and a hand-rolled RFC 6455 framing. The proxy accepts a
WebSocket upgrade, removes `Sec-WebSocket-Extensions` from it (so no permessage-deflate: frames
carry the NATS protocol in clear), connects to the upstream port, and then relays frame by frame.
On command it mistreats the traffic:

  split       re-splits the server's byte stream into random 1–9 byte binary messages
  cut_rate    per data frame (either direction), the chance that only a random prefix of its
              payload goes through and the connection is then dropped (no close frame)
  garbage_rate per server frame, the chance that a message of random bytes goes first
  stall       stops forwarding in both directions without closing anything (until resumed)

Every decision comes from a random generator seeded with `seed` and the connection's number (and
the direction), so a failing run can be replayed with the same seed. Commands (see `command`):

  /proxy/status                    JSON: url, mode, counters, and `live`: the connections open
                                   that no cut has touched (each cut marks its victims at once,
                                   before they are dropped)
  /proxy/set?seed=7&split=1&cut_rate=0.05&garbage_rate=0   change the mode (unnamed keys keep
                                   their value); returns the status
  /proxy/cut                       drops every open connection now, each after a random prefix of
                                   the next frame already on its way if there is one
  /proxy/garbage                   sends a message of random bytes to every open connection now
  /proxy/stall, /proxy/resume      stop / resume forwarding
  /proxy/reset                     back to a faithful relay (mode cleared, forwarding resumed)

Used by scripts/nats_test_control.py (its control port serves these under /proxy/…); runs alone as
`ws_proxy.py <upstream-port>`, which prints `ready <proxy-url> <control-url>`.
"""

import asyncio
import http.server
import json
import os
import random
import signal
import struct
import sys
import threading
import urllib.parse

OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
HEAD_LIMIT = 16 * 1024
DEFAULT_MODE = {"seed": 0, "split": False, "cut_rate": 0.0, "garbage_rate": 0.0}


class Closed(Exception):
    pass


def xor_mask(payload, mask):
    """RFC 6455 §5.3, a whole payload at once."""
    if not payload:
        return payload
    n = len(payload)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


async def read_frame(reader):
    """One frame: (fin, opcode, unmasked payload)."""
    try:
        b0, b1 = await reader.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await reader.readexactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await reader.readexactly(8))
        mask = await reader.readexactly(4) if b1 & 0x80 else None
        payload = await reader.readexactly(n)
    except (asyncio.IncompleteReadError, ConnectionError):
        raise Closed()
    return bool(b0 & 0x80), b0 & 0x0F, xor_mask(payload, mask) if mask else payload


def encode_frame(fin, opcode, payload, masked):
    """A frame; masked (with a fresh key) when it goes to the server, as clients must."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    bit = 0x80 if masked else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if masked:
        mask = os.urandom(4)
        return head + mask + xor_mask(payload, mask)
    return head + payload


def strip_extensions(head):
    """The upgrade request without its Sec-WebSocket-Extensions lines."""
    lines = head.split(b"\r\n")
    kept = [l for l in lines if not l.lower().startswith(b"sec-websocket-extensions:")]
    return b"\r\n".join(kept)


class Connection:
    def __init__(self, number, client_writer, server_writer):
        self.number = number
        self.client_writer = client_writer
        self.server_writer = server_writer
        self.cut_requested = False
        self.closed = False

    def abort(self):
        """Drops both sides at once, no close frame: what a broken network does."""
        if not self.closed:
            self.closed = True
            for w in (self.client_writer, self.server_writer):
                w.transport.abort()


class Proxy:
    def __init__(self, upstream_port, upstream_host="127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self.mode = dict(DEFAULT_MODE)
        self.counts = {"connections": 0, "open": 0, "cuts": 0, "garbage": 0, "split_frames": 0}
        self.connections = set()
        self.loop = None
        self.flowing = None
        self.port = None
        self.next_number = 0

    # ---- lifecycle ------------------------------------------------------------------------------

    def start_in_thread(self):
        """Runs the proxy on its own event loop in a daemon thread; returns its port."""
        started = threading.Event()

        def run():
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self._listen())
            started.set()
            self.loop.run_forever()

        threading.Thread(target=run, name="ws-proxy", daemon=True).start()
        started.wait(10)
        return self.port

    async def _listen(self):
        self.flowing = asyncio.Event()
        self.flowing.set()
        server = await asyncio.start_server(self._accept, "127.0.0.1", 0, limit=1 << 24)
        self.port = server.sockets[0].getsockname()[1]

    @property
    def url(self):
        return f"ws://127.0.0.1:{self.port}"

    # ---- commands (from any thread) -------------------------------------------------------------

    def command(self, path, query):
        """Runs a /proxy/… command; returns (http status, JSON-able body)."""
        what = path.rstrip("/").rsplit("/", 1)[-1]
        if what in ("proxy", "status"):
            pass
        elif what == "set":
            try:
                self._set_mode(query)
            except ValueError as e:
                return 400, {"error": str(e)}
        elif what in ("cut", "garbage", "stall", "resume", "reset"):
            asyncio.run_coroutine_threadsafe(getattr(self, "_" + what)(), self.loop).result(10)
        else:
            return 404, {"error": f"unknown proxy command {what!r}"}
        return 200, self.status()

    def status(self):
        return {
            "url": self.url,
            "mode": dict(self.mode),
            "stalled": not self.flowing.is_set(),
            "live": sum(1 for c in list(self.connections) if not (c.closed or c.cut_requested)),
            **self.counts,
        }

    def _set_mode(self, query):
        mode = dict(self.mode)
        for key, value in query.items():
            if key == "seed":
                mode["seed"] = int(value)
            elif key == "split":
                mode["split"] = value.lower() in ("1", "true", "yes", "on")
            elif key in ("cut_rate", "garbage_rate"):
                rate = float(value)
                if not 0 <= rate <= 1:
                    raise ValueError(f"{key} is a probability (0..1), not {value}")
                mode[key] = rate
            else:
                raise ValueError(f"unknown proxy setting {key!r}")
        self.mode = mode

    async def _cut(self):
        for c in list(self.connections):
            c.cut_requested = True
        # A connection with nothing on its way is dropped at once; the others in _relay, after a
        # prefix of the frame in flight. Let in-flight frames reach _relay first.
        await asyncio.sleep(0.05)
        for c in list(self.connections):
            if not c.closed:
                self.counts["cuts"] += 1
                c.abort()

    async def _garbage(self):
        for c in list(self.connections):
            self._send_garbage(c, random.Random(f"{self.mode['seed']}/{c.number}/garbage/{self.counts['garbage']}"))

    async def _stall(self):
        self.flowing.clear()

    async def _resume(self):
        self.flowing.set()

    async def _reset(self):
        self.mode = dict(DEFAULT_MODE)
        self.flowing.set()

    # ---- relaying -------------------------------------------------------------------------------

    async def _accept(self, client_reader, client_writer):
        number = self.next_number
        self.next_number += 1
        server_writer = None
        try:
            try:
                head = await client_reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            if len(head) > HEAD_LIMIT:
                return
            try:
                server_reader, server_writer = await asyncio.open_connection(*self.upstream, limit=1 << 24)
            except OSError:
                # Upstream down: refuse the way a stopped server would.
                return
            server_writer.write(strip_extensions(head))
            try:
                answer = await server_reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            client_writer.write(answer)
            if not answer.startswith(b"HTTP/1.1 101"):
                await client_writer.drain()
                return
            conn = Connection(number, client_writer, server_writer)
            self.connections.add(conn)
            self.counts["connections"] += 1
            self.counts["open"] += 1
            seed = self.mode["seed"]
            try:
                await asyncio.gather(
                    self._relay(conn, server_reader, client_writer, False, random.Random(f"{seed}/{number}/down")),
                    self._relay(conn, client_reader, server_writer, True, random.Random(f"{seed}/{number}/up")),
                )
            finally:
                self.connections.discard(conn)
                self.counts["open"] -= 1
                conn.abort()
        finally:
            for w in (client_writer, server_writer):
                if w is not None:
                    w.transport.abort()

    def _send_garbage(self, conn, rng):
        junk = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        conn.client_writer.write(encode_frame(True, OP_BINARY, junk, False))
        self.counts["garbage"] += 1

    async def _relay(self, conn, reader, writer, to_server, rng):
        """Frames from `reader` to `writer`; `to_server` says the direction (and masking)."""
        while not conn.closed:
            try:
                fin, opcode, payload = await read_frame(reader)
            except Closed:
                conn.abort()
                return
            await self.flowing.wait()
            if conn.closed:
                return
            mode = self.mode
            if opcode >= OP_CLOSE:
                writer.write(encode_frame(fin, opcode, payload, to_server))
                if opcode == OP_CLOSE:
                    await writer.drain()
                    conn.abort()
                    return
                continue
            if not to_server and mode["garbage_rate"] and rng.random() < mode["garbage_rate"]:
                self._send_garbage(conn, rng)
            cut = conn.cut_requested or (mode["cut_rate"] and rng.random() < mode["cut_rate"])
            if cut:
                # Doomed from here on, though the prefix is still being written.
                conn.cut_requested = True
                keep = payload[: rng.randrange(len(payload))] if payload else b""
                if keep:
                    writer.write(encode_frame(True, opcode or OP_BINARY, keep, to_server))
                    await writer.drain()
                self.counts["cuts"] += 1
                conn.abort()
                return
            if not to_server and mode["split"] and payload:
                i = 0
                while i < len(payload):
                    n = rng.randint(1, 9)
                    writer.write(encode_frame(True, OP_BINARY, payload[i : i + n], False))
                    self.counts["split_frames"] += 1
                    i += n
            else:
                writer.write(encode_frame(fin, opcode, payload, to_server))
            try:
                await writer.drain()
            except ConnectionError:
                conn.abort()
                return


def serve_control(proxy, port=0):
    """A small HTTP control server for the standalone proxy; returns it (serve_forever to run)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            if not url.path.startswith("/proxy"):
                self.send_error(404)
                return
            status, body = proxy.command(url.path, dict(urllib.parse.parse_qsl(url.query)))
            send_json(self, status, body)

        def log_message(self, *args):
            pass

    return http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)


def send_json(handler, status, body):
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Access-Control-Allow-Origin", "*")
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: ws_proxy.py <upstream websocket port>")
    proxy = Proxy(int(sys.argv[1]))
    proxy.start_in_thread()
    httpd = serve_control(proxy)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print(f"ready {proxy.url} http://127.0.0.1:{httpd.server_address[1]}", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()

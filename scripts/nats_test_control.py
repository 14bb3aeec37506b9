#!/usr/bin/env python3
"""A throwaway nats-server for the browser tests, with a tiny HTTP control port.

Browser tests cannot start or stop processes, so this script owns the server and lets them ask:
GET /stop (returns once the process has exited), GET /start (returns once the ports accept
connections), GET /status, GET /ports (JSON: the client, websocket, http monitoring, leafnodes and
mqtt ports, for a via-agent or an MQTT client that a test points at this server). The websocket
port also takes MQTT over WebSocket at path /mqtt (subprotocol mqtt), which needs the mqtt
listener. Everything binds to 127.0.0.1; the control port answers with
`Access-Control-Allow-Origin: *` because the test page is served from another local port.

Prints one line `ready <ws_url> <control_url> <nats_url>` once the server is up, then serves until killed
(SIGTERM stops the server too). Usage: nats_test_control.py <work-dir>; the server binary is
$NATS_SERVER_BIN, else the first nats-server on PATH; NATS_WS_COMPRESSION=1 turns on WebSocket
compression. NATS_TEST_ACCOUNTS=1 gives the server the development server's accounts and users
(nats-accounts.conf, fresh passwords; leaf nodes sign in as user leaf): anonymous connections are
then the restricted `browser`, and GET /credentials returns the passwords as JSON
(`{"NATS_ADMIN_PASSWORD": …}`, the names of data/credentials.env; `{}` without accounts).

A hostile-network proxy (scripts/ws_proxy.py) sits in front of the WebSocket port, a faithful relay
until told otherwise: GET /proxy/status gives its url (JSON), and /proxy/set, /proxy/cut,
/proxy/garbage, /proxy/stall, /proxy/resume, /proxy/reset change what it does (see ws_proxy.py).

GET /auth-server?config=C starts (or restarts) a second, small nats-server (WebSocket, no
JetStream) with the configuration text C appended, for the browser's authentication tests (NKey
users, an operator with preloaded accounts): JSON `{"websocket": <url>}`, or 500 with the end of its
log. GET /auth-server/stop stops it. With &tls=1 its WebSocket port speaks TLS (wss://, a
self-signed certificate for 127.0.0.1 made with openssl; the browser must be told to accept it).

GET /request?subject=S&payload=P makes a NATS request with nats-py over the server's TCP port, a
native peer for the browser's services: JSON `{"payload": …, "headers": {…}}` (200) or
`{"error": …}` (504).

NATS_TEST_CLUSTER=1 makes it a 3-node cluster (routes with a password, JetStream on each node; as
`bash nats.sh cluster` does): the ready line, /start, /stop and /ports are node 0's; GET /cluster
lists the nodes (JSON: name, running, client, websocket, http, leafnodes ports), GET
/cluster/kill?node=N kills node N with SIGKILL, GET /cluster/start?node=N starts it again (once its
ports accept connections). The cluster is ready when every node's /healthz says JetStream is.
"""

import http.server
import os
import secrets
import string
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

from ws_proxy import Proxy, send_json


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, deadline):
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def random_password():
    # A letter first: nats-server reads an environment variable as a configuration value.
    first = secrets.choice(string.ascii_letters)
    return first + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(23))


def wait_healthy(http_port, proc, deadline):
    """True once the server's /healthz answers 200 (with JetStream: once it has a meta leader)."""
    import urllib.request

    while time.monotonic() < deadline:
        if proc is None or proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def nats_request(port, subject, payload, credentials, timeout=5.0):
    """One request with nats-py (imported here: only this endpoint needs it); as admin when the
    server has accounts."""
    import asyncio

    import nats

    async def run():
        auth = {}
        if "NATS_ADMIN_PASSWORD" in credentials:
            auth = {"user": "admin", "password": credentials["NATS_ADMIN_PASSWORD"]}
        nc = await nats.connect(f"nats://127.0.0.1:{port}", connect_timeout=timeout, **auth)
        try:
            msg = await nc.request(subject, payload.encode(), timeout=timeout)
            return {"payload": msg.data.decode("utf-8", "replace"), "headers": dict(msg.headers or {})}
        finally:
            await nc.close()

    try:
        return 200, asyncio.run(run())
    except Exception as e:  # timeouts, no responders: the test reads the reason
        return 504, {"error": f"{type(e).__name__}: {e}"}


def terminate(proc):
    """Stops a server process (SIGTERM, then SIGKILL after 10 s) and reaps it; None is fine."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def note_unasked_exit(proc, log):
    """Writes to the server's log when it ends without being asked to (a crash, a signal from
    elsewhere), so that a test that then finds it gone has the cause on record."""
    status = proc.wait()
    if not getattr(proc, "asked_to_exit", False):
        try:
            log.write(f"[nats_test_control] nats-server (pid {proc.pid}) ended unasked, status {status}\n")
            log.flush()
        except ValueError:
            pass  # the log is closed: the control itself is ending


class Server:
    """One nats-server; node `index` of a cluster when `cluster` = (route ports, route password)."""

    def __init__(self, work_dir, credentials=None, index=0, cluster=None):
        self.work_dir = work_dir
        os.makedirs(work_dir, exist_ok=True)
        self.client_port, self.ws_port, self.http_port = free_port(), free_port(), free_port()
        # Leaf nodes started by via-agent in the /scale tests join here.
        self.leafnode_port = free_port()
        # MQTT clients (via-sensor, the playground's MQTT over WebSocket); needs server_name and
        # JetStream, both below.
        self.mqtt_port = free_port()
        self.config = os.path.join(work_dir, "nats-server.conf")
        # NATS_WS_COMPRESSION=1: permessage-deflate on the WebSocket port (browsers negotiate it; on
        # 2.15 the server then refuses client frames that inflate beyond max_payload).
        compression = "  compression: true\n" if os.environ.get("NATS_WS_COMPRESSION") == "1" else ""
        # The development server's accounts (NATS_TEST_ACCOUNTS=1), with passwords of this run
        # (shared by the nodes of a cluster).
        self.credentials = credentials if credentials is not None else test_credentials()
        accounts = ""
        leaf_auth = ""
        if os.environ.get("NATS_TEST_ACCOUNTS") == "1":
            repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            shutil.copy(os.path.join(repo, "nats-accounts.conf"), os.path.join(work_dir, "nats-accounts.conf"))
            accounts = "include ./nats-accounts.conf\n"
            leaf_auth = "  authorization {\n    user: leaf\n    password: $NATS_LEAF_PASSWORD\n    account: APP\n  }\n"
        self.name = f"nats-ws-browser-test-{index}" if cluster else "nats-ws-browser-test"
        self.env = dict(self.credentials)
        cluster_block = ""
        if cluster:
            route_ports, route_password = cluster
            self.env["NATS_ROUTE_PASSWORD"] = route_password
            routes = "".join(f"    nats-route://route:{route_password}@127.0.0.1:{p}\n" for p in route_ports)
            cluster_block = (
                f"cluster {{\n  name: via-test\n  host: 127.0.0.1\n  port: {route_ports[index]}\n"
                f"  authorization {{\n    user: route\n    password: $NATS_ROUTE_PASSWORD\n  }}\n"
                f"  routes: [\n{routes}  ]\n}}\n"
            )
        with open(self.config, "w") as f:
            f.write(
                f"server_name: {self.name}\nhost: 127.0.0.1\nport: {self.client_port}\n"
                f"http: 127.0.0.1:{self.http_port}\n"
                f"websocket {{\n  host: 127.0.0.1\n  port: {self.ws_port}\n  no_tls: true\n{compression}}}\n"
                f"leafnodes {{\n  host: 127.0.0.1\n  port: {self.leafnode_port}\n{leaf_auth}}}\n"
                f"mqtt {{\n  host: 127.0.0.1\n  port: {self.mqtt_port}\n}}\n"
                f'jetstream {{\n  store_dir: "{os.path.join(work_dir, "store")}"\n}}\n'
                f"{cluster_block}"
                f"{accounts}"
            )
        # NATS_SERVER_BIN picks the server (./test.sh runs the suite against two); else PATH's.
        self.binary = (
            os.environ.get("NATS_SERVER_BIN") or shutil.which("nats-server") or "/usr/sbin/nats-server"
        )
        self.proc = None
        self.lock = threading.Lock()

    def start(self):
        with self.lock:
            if self.proc is not None and self.proc.poll() is None:
                return True
            log = open(os.path.join(self.work_dir, "nats-server.log"), "a")
            self.proc = subprocess.Popen(
                [self.binary, "-c", self.config],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env={**os.environ, **self.env},
            )
            threading.Thread(target=note_unasked_exit, args=(self.proc, log), daemon=True).start()
            deadline = time.monotonic() + 20
            ports = (self.client_port, self.ws_port, self.mqtt_port)
            return all(wait_for_port(p, self.proc, deadline) for p in ports)

    def stop(self):
        with self.lock:
            if self.proc is not None:
                self.proc.asked_to_exit = True
            terminate(self.proc)
            self.proc = None

    def kill(self):
        """SIGKILL, as a crash: no lame duck, no goodbye to the cluster."""
        with self.lock:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.asked_to_exit = True
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def describe(self):
        return {
            "name": self.name,
            "running": self.running(),
            "client": self.client_port,
            "websocket": self.ws_port,
            "http": self.http_port,
            "leafnodes": self.leafnode_port,
            "mqtt": self.mqtt_port,
        }

    def running(self):
        return self.proc is not None and self.proc.poll() is None


def test_credentials():
    """The users' passwords of this run (NATS_TEST_ACCOUNTS=1), named as in data/credentials.env."""
    if os.environ.get("NATS_TEST_ACCOUNTS") != "1":
        return {}
    users = ("admin", "sys", "agent", "worker", "publisher", "math", "sensor", "leaf")
    return {f"NATS_{user.upper()}_PASSWORD": random_password() for user in users}


def make_servers(work_dir):
    """One server, or the three nodes of a cluster (NATS_TEST_CLUSTER=1) sharing the passwords."""
    if os.environ.get("NATS_TEST_CLUSTER") != "1":
        return [Server(work_dir)]
    credentials = test_credentials()
    cluster = ([free_port() for _ in range(3)], random_password())
    return [Server(os.path.join(work_dir, f"n{i}"), credentials, i, cluster) for i in range(3)]


def start_all(servers):
    """Starts every server; a cluster's nodes must all be up before JetStream is (a new cluster
    elects its meta leader once it has seen every configured peer), so they start together and
    are then awaited."""
    if len(servers) == 1:
        return servers[0].start()
    started = [False] * len(servers)

    def start(i):
        started[i] = servers[i].start()

    threads = [threading.Thread(target=start, args=(i,)) for i in range(len(servers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if not all(started):
        return False
    deadline = time.monotonic() + 30
    return all(wait_healthy(s.http_port, s.proc, deadline) for s in servers)


class AuthServer:
    """A second nats-server with a configuration the test supplies (authentication tests)."""

    def __init__(self, work_dir, binary):
        self.work_dir = os.path.join(work_dir, "auth-server")
        os.makedirs(self.work_dir, exist_ok=True)
        self.binary = binary
        self.proc = None
        self.lock = threading.Lock()

    def start(self, extra_config, tls=False):
        """Returns (ws_url, None) once it listens, else (None, the end of its log)."""
        with self.lock:
            self._stop()
            client_port, ws_port = free_port(), free_port()
            config = os.path.join(self.work_dir, "nats-server.conf")
            if tls:
                cert, key = self._certificate()
                ws_tls = f'  tls {{\n    cert_file: "{cert}"\n    key_file: "{key}"\n  }}\n'
            else:
                ws_tls = "  no_tls: true\n"
            with open(config, "w") as f:
                f.write(
                    f"server_name: nats-ws-auth-test\nhost: 127.0.0.1\nport: {client_port}\n"
                    f"websocket {{\n  host: 127.0.0.1\n  port: {ws_port}\n{ws_tls}}}\n"
                    f"{extra_config}\n"
                )
            log_path = os.path.join(self.work_dir, "nats-server.log")
            with open(log_path, "w") as log:
                self.proc = subprocess.Popen(
                    [self.binary, "-c", config], stdin=subprocess.DEVNULL, stdout=log, stderr=log
                )
            deadline = time.monotonic() + 20
            if all(wait_for_port(p, self.proc, deadline) for p in (client_port, ws_port)):
                return f"{'wss' if tls else 'ws'}://127.0.0.1:{ws_port}", None
            self._stop()
            with open(log_path) as f:
                return None, "".join(f.readlines()[-15:])

    def _certificate(self):
        """A self-signed certificate for 127.0.0.1 (P-256, one day), made once per run."""
        cert = os.path.join(self.work_dir, "cert.pem")
        key = os.path.join(self.work_dir, "key.pem")
        if not os.path.exists(cert):
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                 "-addext", "subjectAltName=IP:127.0.0.1"],
                check=True, capture_output=True,
            )
        return cert, key

    def stop(self):
        with self.lock:
            self._stop()

    def _stop(self):
        terminate(self.proc)
        self.proc = None


def main():
    work_dir = sys.argv[1]
    servers = make_servers(work_dir)
    # A port picked free may be taken by another process before the server binds it (a node
    # that cannot bind stops the whole cluster's JetStream; a clean-clone run's single server
    # once lost its WebSocket port so): fresh ports, up to three times.
    attempts = 3
    for attempt in range(attempts):
        started = start_all(servers)
        if started or attempt == attempts - 1:
            break
        for s in servers:
            s.stop()
        servers = make_servers(os.path.join(work_dir, f"retry{attempt + 1}"))
    server = servers[0]
    auth_server = AuthServer(work_dir, server.binary)

    proxy = Proxy(server.ws_port)
    proxy.start_in_thread()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            if url.path.startswith("/proxy"):
                status, body = proxy.command(url.path, dict(urllib.parse.parse_qsl(url.query)))
                send_json(self, status, body)
                return
            if url.path == "/cluster":
                send_json(self, 200, [s.describe() for s in servers])
                return
            if url.path in ("/cluster/kill", "/cluster/start"):
                query = dict(urllib.parse.parse_qsl(url.query))
                try:
                    node = servers[int(query.get("node", ""))]
                except (ValueError, IndexError):
                    send_json(self, 400, {"error": f"no node {query.get('node')!r}: 0 to {len(servers) - 1}"})
                    return
                if url.path == "/cluster/kill":
                    node.kill()
                    send_json(self, 200, node.describe())
                else:
                    ok = node.start()
                    send_json(self, 200 if ok else 500, node.describe())
                return
            if url.path == "/request":
                query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
                # Through a node that is up (a cluster test may have killed node 0).
                peer = next((s for s in servers if s.running()), server)
                status, body = nats_request(
                    peer.client_port, query.get("subject", ""), query.get("payload", ""), server.credentials
                )
                send_json(self, status, body)
                return
            if url.path == "/auth-server":
                query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
                ws_url, log_tail = auth_server.start(query.get("config", ""), tls=query.get("tls") == "1")
                if ws_url:
                    send_json(self, 200, {"websocket": ws_url})
                else:
                    send_json(self, 500, {"error": "nats-server did not start", "log": log_tail})
                return
            if url.path == "/auth-server/stop":
                auth_server.stop()
                send_json(self, 200, {"stopped": True})
                return
            if self.path == "/credentials":
                send_json(self, 200, server.credentials)
                return
            if self.path == "/ports":
                send_json(
                    self,
                    200,
                    {
                        "client": server.client_port,
                        "websocket": server.ws_port,
                        "http": server.http_port,
                        "leafnodes": server.leafnode_port,
                        "mqtt": server.mqtt_port,
                    },
                )
                return
            if self.path == "/stop":
                server.stop()
                ok = True
            elif self.path == "/start":
                ok = server.start()
            elif self.path == "/status":
                ok = True
            else:
                self.send_error(404)
                return
            body = ("running" if server.running() else "stopped").encode()
            self.send_response(200 if ok else 500)
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    def stop_all():
        for s in servers:
            s.stop()
        auth_server.stop()

    def shutdown(*_):
        stop_all()
        os._exit(0)

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    if not started:
        tails = []
        for s in servers:
            try:
                with open(os.path.join(s.work_dir, "nats-server.log")) as f:
                    tails.append(f"{s.name}:\n" + "".join(f.readlines()[-15:]))
            except OSError:
                tails.append(f"{s.name}: (no log)\n")
        stop_all()
        sys.exit(f"nats-server ({server.binary}) did not start; the end of its log:\n" + "".join(tails))
    print(
        f"ready ws://127.0.0.1:{server.ws_port} http://127.0.0.1:{httpd.server_address[1]} "
        f"nats://127.0.0.1:{server.client_port}",
        flush=True,
    )
    try:
        httpd.serve_forever()
    finally:
        stop_all()


if __name__ == "__main__":
    main()

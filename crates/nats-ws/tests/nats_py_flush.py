"""A flush that covers everything sent before it, for the nats-py peers (interop_peer.py, service_peer.py)."""


async def flush_all(nc):
    """Returns once the server has processed every command this client sent before the call.

    One `nc.flush()` does not promise that with nats-py (2.16 and its main branch): SUB and PUB
    wait in a queue for its flusher task, while `flush()` writes its PING to the socket at once,
    ahead of them. The server then answers PONG before it has read the SUB, and a request sent on
    the strength of it can come back "no responders" (seen in CI). By the time that first PONG is
    back the flusher has run, so a second PING goes out behind the queued commands and its PONG
    covers them.
    """
    await nc.flush()
    await nc.flush()

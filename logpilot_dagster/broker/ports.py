"""Loopback ports: pick free ones, check whether one listens."""

from __future__ import annotations

import random
import socket
from contextlib import ExitStack
from pathlib import Path

_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports below the kernel's ephemeral range, for a server that listens on several:
    an ephemeral port can be taken between our check and its bind by any outgoing connection, the server's own
    connections between its parts included."""
    try:
        low = int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    high = max(low, 10000 + 4 * count)
    candidates = random.sample(range(10000, high), k=min(2000, high - 10000))
    chosen: list[int] = []
    with ExitStack() as held:  # held open until all are chosen, so none is picked twice
        for port in candidates:
            sock = held.enter_context(socket.socket())
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    return [free_port() for _ in range(count)]


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        socket.create_connection((host, port), timeout).close()
        return True
    except OSError:
        return False

"""Ports that swallow traffic, as a server behind a firewall that drops packets does.

`silent_port()`: a TCP connect succeeds (the kernel completes the handshake
into the listen backlog) but nothing is ever read or answered, so a client
waits for its read timeout. `full_port()`: the backlog is full, the kernel
drops every new SYN, so a client waits for its connect timeout. Neither ever
refuses: that is what makes a packet-dropping server costlier than a stopped one.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

from devstack.procs import LOOPBACK


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind((LOOPBACK, 0))
        listener.listen(128)  # never accept()ed: connections wait in the backlog, unanswered
        yield listener.getsockname()[1]
    finally:
        listener.close()


@contextlib.contextmanager
def full_port() -> Iterator[int]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind((LOOPBACK, 0))
        listener.listen(0)  # Linux queues backlog + 1 = one connection ...
        port = listener.getsockname()[1]
        filler.connect((LOOPBACK, port))  # ... this one, so every later SYN is dropped
        yield port
    finally:
        filler.close()
        listener.close()

"""A small TCP proxy for tests and `make chaos`: forwards a local port to a server and can cut and restore the link.

`cut()` closes every open connection and stops listening, so clients see the
server vanish (connection reset, then connection refused); `restore()` listens
on the same port again. `stall()` keeps every connection open but forwards
nothing (a server that hangs) until `resume()` (or `cut()`). Threads and plain
sockets, nothing else.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from devstack.procs import LOOPBACK

_CHUNK = 65536


class TcpProxy:
    def __init__(self, target: tuple[str, int], port: int = 0, host: str = LOOPBACK) -> None:
        self.target = target
        self.host = host
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._flowing = threading.Event()
        self._flowing.set()
        self.port = port
        self.restore()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def restore(self) -> None:
        """Listen (again) on the proxy's port and forward new connections."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True, name="proxy-accept").start()

    def cut(self) -> None:
        """Stop listening and drop every open connection."""
        with self._lock:
            listener, self._listener = self._listener, None
            open_sockets, self._sockets = self._sockets, set()
        if listener is not None:
            _close(listener)
        for sock in open_sockets:
            _close(sock)
        self._flowing.set()  # a stalled pipe wakes up and finds its socket closed

    def stall(self) -> None:
        """Keep every connection (and accepting new ones) but forward no byte until resume()."""
        self._flowing.clear()

    def resume(self) -> None:
        """Forward again, starting with what arrived while stalled."""
        self._flowing.set()

    close = cut

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut() closed the listener
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    _close(client)
                    _close(upstream)
                    return
                self._sockets |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True, name="proxy-pipe").start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(_CHUNK):
                self._flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._sockets -= {source, sink}
            _close(source)
            _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the other side
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()

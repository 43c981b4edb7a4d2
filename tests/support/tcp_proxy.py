"""A TCP proxy the tests control: a dependency that is reachable, silent, or gone.

``TcpProxy(("127.0.0.1", 5432)).start()`` listens on a free port and forwards every connection
to the target. :meth:`silence` stops forwarding in both directions while keeping every socket
open (a hung server, a partition: bytes go out and nothing comes back, and new connections are
accepted but never answered); :meth:`restore` forwards again; :meth:`drop` resets every open
connection (a restarted server); :meth:`refuse` closes the listening socket (nothing listens).
Used by the fault tests and by ``make chaos`` (never the shared servers themselves).
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading


class TcpProxy:
    def __init__(self, target: tuple[str, int], host: str = "127.0.0.1", port: int = 0) -> None:
        self.target = target
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, port))
        self.listener.listen(128)
        self.host, self.port = self.listener.getsockname()[:2]
        self._forwarding = threading.Event()
        self._forwarding.set()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._closed = False
        self.accepted = 0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> TcpProxy:
        threading.Thread(target=self._accept, name="tcp-proxy", daemon=True).start()
        return self

    def silence(self) -> None:
        """Stop forwarding; every connection stays open, and new ones are accepted."""
        self._forwarding.clear()

    def restore(self) -> None:
        self._forwarding.set()

    @property
    def forwarding(self) -> bool:
        return self._forwarding.is_set()

    def drop(self) -> None:
        """Reset every open connection (new ones are still accepted)."""
        with self._lock:
            sockets, self._sockets = list(self._sockets), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                sock.close()

    def close(self) -> None:
        self._closed = True
        self._forwarding.set()
        with contextlib.suppress(OSError):
            self.listener.close()
        self.drop()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._serve, args=(client,), name="tcp-proxy-conn", daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with self._lock:
            self._sockets.add(client)
        self._forwarding.wait()  # silenced: accepted, never answered
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError:
            self._forget(client)
            return
        upstream.settimeout(None)
        with self._lock:
            self._sockets.add(upstream)
        pair = {client: upstream, upstream: client}
        try:
            while not self._closed:
                self._forwarding.wait()
                readable, _, _ = select.select(list(pair), [], [], 0.2)
                for sock in readable:
                    if not self._forwarding.is_set():
                        break  # silenced between select and read: hold the bytes back
                    data = sock.recv(65536)
                    if not data:
                        return
                    pair[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            self._forget(client)
            self._forget(upstream)

    def _forget(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        with contextlib.suppress(OSError):
            sock.close()

"""The servers the web tier runs on: gunicorn in production, werkzeug's in ``forgeflow serve``.

Kept apart from :mod:`service.cli.processes` so the web process imports only what the web tier
uses (no Celery, no executors, no forge clients): it stays small in memory. Both servers get
the same guard against slow clients (:mod:`service.web.read_deadlines`): a thread starts a
request's clock when it starts reading it, and a late request is cut off.
"""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING, Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from service import memory
from service.web.read_deadlines import ReadDeadlines

if TYPE_CHECKING:
    from service.context import Context


def prepare_metrics_dir() -> str:
    """Make the web workers count metrics in shared files (prometheus_client's multiprocess
    mode): a fresh folder, named in ``PROMETHEUS_MULTIPROC_DIR``. Call it before anything
    imports prometheus_client (it reads the variable when it is imported)."""
    path = tempfile.mkdtemp(prefix="forgeflow-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path


def _worker_exited(_server: Any, worker: Any) -> None:
    from service.metrics import process_exited

    process_exited(worker.pid)


def run_gunicorn(ctx: Context, bind: str, workers: int, threads: int) -> None:
    """The production web process: gunicorn serving the Flask app (its metrics shared by its
    worker processes when :func:`prepare_metrics_dir` ran first)."""
    from gunicorn.app.base import BaseApplication

    from service.web.app import create_app, read_deadlines

    wsgi = create_app(ctx)
    worker_class = gunicorn_worker(read_deadlines(wsgi), threads)
    memory.limit_arenas()  # before the workers are forked: they inherit it

    class ForgeflowWeb(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", bind)
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", worker_class)
            self.cfg.set("accesslog", "-")
            self.cfg.set("timeout", 60)
            # each worker its own listening socket: the kernel spreads connections over them.
            # With one shared socket the first worker awake accepts a burst of keep-alive
            # connections (a router's, a load test's) and the others sit idle. (The price: a
            # connection still queued on a worker's socket when that worker exits is reset;
            # deployments replace pods, draining them first, rather than reload workers.)
            self.cfg.set("reuse_port", True)
            self.cfg.set("child_exit", _worker_exited)
            if "control_socket_disable" in self.cfg.settings:  # one per host path; not needed
                self.cfg.set("control_socket_disable", True)

        def load(self) -> Any:
            return wsgi

    ctx.db.dispose()  # each forked worker opens its own connections
    ForgeflowWeb().run()


def gunicorn_worker(deadlines: ReadDeadlines, threads: int) -> type:
    """gunicorn's worker (threads, or one at a time), each request read against its deadline."""
    from gunicorn.workers.gthread import ThreadWorker
    from gunicorn.workers.sync import SyncWorker

    class Forgeflow:
        """What forgeflow adds to either worker class."""

        def init_process(self) -> None:
            deadlines.after_fork()
            memory.trim_now_and_then()
            super().init_process()  # type: ignore[misc]

        def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
            super().handle_error(req, client, addr, client_fault(exc))  # type: ignore[misc]

    if threads > 1:

        class DeadlineThreadWorker(Forgeflow, ThreadWorker):  # type: ignore[misc]
            def handle(self, conn: Any) -> Any:
                ticket = deadlines.arm(conn.sock)
                try:
                    return super().handle(conn)
                finally:
                    deadlines.disarm(ticket)

        return DeadlineThreadWorker

    class DeadlineSyncWorker(Forgeflow, SyncWorker):  # type: ignore[misc]
        def handle(self, listener: Any, client: Any, addr: Any) -> None:
            ticket = deadlines.arm(client)
            try:
                super().handle(listener, client, addr)
            finally:
                deadlines.disarm(ticket)

    return DeadlineSyncWorker


def client_fault(exc: BaseException) -> BaseException:
    """What gunicorn answers for a request it cannot parse: a transfer coding it does not know
    is the client's fault too (gunicorn says 501; forgeflow never answers 5xx for bad input)."""
    from gunicorn.http.errors import InvalidHeader, UnsupportedTransferCoding

    if isinstance(exc, UnsupportedTransferCoding):
        refused: BaseException = InvalidHeader(f"Transfer-Encoding: {exc} is not supported")
        return refused
    return exc


# -- the development server (forgeflow serve) ----------------------------------------------


class ChunkedBodyError(ValueError):
    """A chunked request body that does not follow HTTP/1.1's framing."""


class StrictChunkedInput:
    """A chunked body, read strictly: a bad size line, a missing CRLF or an early end raises
    :class:`ChunkedBodyError` (werkzeug's own reader can loop or miscount on such input)."""

    MAX_LINE = 1024

    def __init__(self, rfile: Any) -> None:
        self.rfile = rfile
        self.left = 0  # bytes left in the current chunk
        self.done = False

    def _line(self) -> bytes:
        line: bytes = self.rfile.readline(self.MAX_LINE + 1)
        if not line.endswith(b"\n") or len(line) > self.MAX_LINE:
            raise ChunkedBodyError("chunked body: a line is cut short or too long")
        return line.rstrip(b"\r\n")

    def _next_chunk(self) -> None:
        size = self._line().split(b";", 1)[0].strip()
        if not size or len(size) > 16 or any(c not in b"0123456789abcdefABCDEF" for c in size):
            raise ChunkedBodyError(f"chunked body: {size[:20]!r} is not a chunk size")
        self.left = int(size, 16)
        if self.left == 0:
            while self._line():  # trailers, up to the empty line
                pass
            self.done = True

    def read(self, size: int = -1) -> bytes:
        parts: list[bytes] = []
        wanted = size if size is not None and size >= 0 else None
        while not self.done and (wanted is None or wanted > 0):
            if self.left == 0:
                self._next_chunk()
                continue
            take = self.left if wanted is None else min(self.left, wanted)
            data = self.rfile.read(take)
            if len(data) < take:
                raise ChunkedBodyError("chunked body: the connection ended inside a chunk")
            parts.append(data)
            self.left -= take
            if wanted is not None:
                wanted -= take
            if self.left == 0 and self._line():
                raise ChunkedBodyError("chunked body: a chunk is longer than its size says")
        return b"".join(parts)


def dev_server(app: Any, host: str, port: int, deadlines: ReadDeadlines) -> BaseWSGIServer:
    """werkzeug's threaded server (``forgeflow serve``, tests), with read deadlines and a
    strict reader for chunked bodies."""

    class Handler(WSGIRequestHandler):
        def handle_one_request(self) -> None:
            ticket = deadlines.arm(self.connection)
            try:
                super().handle_one_request()
            finally:
                deadlines.disarm(ticket)

        def make_environ(self) -> Any:
            environ = super().make_environ()
            if environ.get("wsgi.input_terminated"):  # chunked
                environ["wsgi.input"] = StrictChunkedInput(self.rfile)
            return environ

    return make_server(host, port, app, threaded=True, request_handler=Handler)

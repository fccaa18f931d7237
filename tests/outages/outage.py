"""Database outages a test can switch on and off while `llmrelay serve` runs in another process.

PostgreSQL: the shared server stays up (other tests use it); llmrelay reaches it through `TcpProxy`,
whose `down()` aborts every proxied connection and closes the listening socket (new connections are
refused), and whose `up()` listens on the same port again.  The proxy runs in its own thread and event
loop, so that it keeps forwarding while the test blocks (starting a server, waiting on it).

SQLite: `SqliteLock.down()` takes the file's write lock with `BEGIN EXCLUSIVE` from another connection
and holds it, as a stuck process would; `up()` lets it go.  Reads still work (WAL), writes time out.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time


class TcpProxy:
    """127.0.0.1:`port` -> `host`:`upstream_port`, until `down()`."""

    def __init__(self, host: str, upstream_port: int) -> None:
        self.host, self.upstream_port = host, upstream_port
        self.port = 0
        self.connections = 0  # accepted so far
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="pg-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.BaseTransport] = set()

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def _call(self, coro) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def up(self) -> None:
        self._call(self._listen())

    def down(self) -> None:
        self._call(self._close())

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._connection, "127.0.0.1", self.port)
            self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for t in list(self._transports):
            t.abort()
        self._transports.clear()
        if server is not None:
            await server.wait_closed()

    async def _connection(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self._server is None:  # accepted just as it went down
            client_w.transport.abort()
            return
        self.connections += 1
        try:
            up_r, up_w = await asyncio.open_connection(self.host, self.upstream_port)
        except OSError:
            client_w.transport.abort()
            return
        pair = {client_w.transport, up_w.transport}
        self._transports |= pair

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(client_r, up_w), pipe(up_r, client_w))
        self._transports -= pair


class SqliteLock:
    """Another connection that holds the SQLite file's write lock between `down()` and `up()`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def down(self, timeout: float = 10.0) -> None:
        conn = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
        deadline = time.monotonic() + timeout
        while True:  # the server may be writing: take the lock as soon as it lets go
            try:
                conn.execute("BEGIN EXCLUSIVE")
                break
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    conn.close()
                    raise
                time.sleep(0.002)
        self._conn = conn

    def up(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.execute("ROLLBACK")
            conn.close()

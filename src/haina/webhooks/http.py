"""The worker's HTTP: a few kept-alive connections per receiving origin, each used by one
sender at a time, speaking HTTP/1.1 through h11 on asyncio's own streams.

A webhook is one POST with a small body to a URL the worker has sent to many times before.
httpx's client, httpcore's connection pool and anyio's cancel scopes and locks did far more
than that on every request: under py-spy the client layer was ~14 % of the worker's time, the
pool's bookkeeping ~16 %, and anyio (a cancel scope per read and write, a lock that yields to
the loop on each of its three acquisitions per request) about a quarter of what was left.
Here a sender takes an idle connection from its origin's stack (or opens one), sends one
request with h11 (the sans-I/O HTTP/1.1 library httpcore itself uses), reads the answer and
puts the connection back. The caller bounds the whole exchange with one ``asyncio.timeout``.

- asyncio reads every open connection in the background, so a receiver closing an idle one
  is already known when it is taken (``at_eof``): no poll per request.
- A request on a reused connection that fails before any answer arrives (closed as it was
  taken) is sent once more on a new one; receivers deduplicate by ``webhook-id`` anyway.
- Each connection goes to an address checked by :mod:`.egress` (public only, unless private
  addresses are allowed); TLS verifies the certificate against the host name.
- Behind an egress proxy (``HTTP_PROXY``/``HTTPS_PROXY``, ``NO_PROXY`` honoured) requests go
  through httpx's transport with that proxy: the proxy is then the filter (see .egress).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Protocol

import h11
import httpx

from haina.webhooks import egress

#: seconds an idle connection is kept (httpx's default)
KEEPALIVE = 5.0
_READ = 64 * 1024


class Exchange(Protocol):
    """Send one POST and return its status and the first ``limit`` bytes of its body."""

    async def post(self, url: str, headers: list[tuple[bytes, bytes]], body: bytes,
                   limit: int) -> tuple[int, bytes]: ...

    def sweep(self, now: float) -> None:
        """Close idle connections that expired (``now``: ``time.monotonic()``)."""

    async def aclose(self) -> None: ...


class ReceiverClosed(ConnectionError):
    """The receiver closed (or reset, or broke) the connection; ``answered``: after its answer
    had begun (such a request is not sent again on a new connection)."""

    def __init__(self, message: str, *, answered: bool) -> None:
        super().__init__(message)
        self.answered = answered


@dataclass(eq=False, slots=True)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    protocol: h11.Connection = field(default_factory=lambda: h11.Connection(h11.CLIENT))
    idle_since: float = 0.0

    def usable(self, now: float) -> bool:
        return (now - self.idle_since < KEEPALIVE and not self.reader.at_eof()
                and not self.writer.is_closing())

    def close(self) -> None:
        self.writer.close()


class Direct:
    """Kept-alive connections to one origin; as many as senders use them at once."""

    def __init__(self, url: str, *, allow_private: bool,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        parsed = httpx.URL(url)
        self.host = parsed.host  # IDNA-encoded by httpx
        self.port = parsed.port or {"http": 80, "https": 443}[parsed.scheme]
        self.netloc = parsed.netloc  # the Host header, as httpx sends it
        self.allow_private = allow_private
        self.ssl_context = ssl_context or (httpx.create_ssl_context()
                                           if parsed.scheme == "https" else None)
        self.targets: dict[str, bytes] = {}
        self.idle: list[_Connection] = []
        self.open: set[_Connection] = set()

    async def _connect(self) -> _Connection:
        address = self.host if self.allow_private \
            else await egress.public_address(self.host, self.port)
        reader, writer = await asyncio.open_connection(
            address, self.port, ssl=self.ssl_context,
            server_hostname=self.host if self.ssl_context else None)
        conn = _Connection(reader, writer)
        self.open.add(conn)
        return conn

    def _take(self) -> _Connection | None:
        """An idle connection still good to use, or None."""
        now = time.monotonic()
        while self.idle:
            conn = self.idle.pop()
            if conn.usable(now):
                return conn
            self._drop(conn)
        return None

    def sweep(self, now: float) -> None:
        """Close the idle connections that expired or that the receiver closed (an origin
        not sent to again would otherwise hold its sockets for as long as the worker runs)."""
        idle, self.idle = self.idle, []
        for conn in idle:
            if conn.usable(now):
                self.idle.append(conn)
            else:
                self._drop(conn)

    def _drop(self, conn: _Connection) -> None:
        self.open.discard(conn)
        conn.close()

    def _target(self, url: str) -> bytes:
        found = self.targets.get(url)
        if found is None:
            if len(self.targets) > 1000:
                self.targets.clear()
            found = self.targets[url] = httpx.URL(url).raw_path
        return found

    async def post(self, url: str, headers: list[tuple[bytes, bytes]], body: bytes,
                   limit: int) -> tuple[int, bytes]:
        request = h11.Request(method=b"POST", target=self._target(url), headers=[
            (b"host", self.netloc), (b"content-length", str(len(body)).encode()), *headers])
        conn = self._take()
        if conn is not None:
            try:
                return await self._exchange(conn, request, body, limit)
            except ReceiverClosed as exc:
                if exc.answered:
                    raise
                # closed as it was taken, before any answer: once more, on a new connection
        return await self._exchange(await self._connect(), request, body, limit)

    async def _exchange(self, conn: _Connection, request: h11.Request, body: bytes,
                        limit: int) -> tuple[int, bytes]:
        protocol = conn.protocol
        kept = False
        status = 0
        chunks = bytearray()
        try:
            conn.writer.write(protocol.send(request) + protocol.send(h11.Data(data=body))
                              + protocol.send(h11.EndOfMessage()))
            await conn.writer.drain()
            while True:
                event = protocol.next_event()
                if event is h11.NEED_DATA:
                    data = await conn.reader.read(_READ)
                    if not data and status == 0:
                        raise ReceiverClosed("the receiver closed the connection without "
                                             "answering", answered=False)
                    protocol.receive_data(data)
                elif isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    chunks += event.data
                    if len(chunks) > limit:  # enough to keep: the connection is given up
                        return status, bytes(chunks)
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    raise ReceiverClosed("the receiver closed the connection mid-answer",
                                         answered=True)
                # an InformationalResponse (1xx) is skipped
            if protocol.our_state is h11.DONE and protocol.their_state is h11.DONE:
                protocol.start_next_cycle()
                conn.idle_since = time.monotonic()
                self.idle.append(conn)
                kept = True
            return status, bytes(chunks)
        except h11.RemoteProtocolError as exc:
            raise ReceiverClosed(f"the receiver broke HTTP/1.1: {exc}", answered=True) from exc
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise ReceiverClosed(f"the connection was reset: {exc}",
                                 answered=status != 0) from exc
        finally:
            if not kept:
                self._drop(conn)

    async def aclose(self) -> None:
        conns = list(self.open)
        self.open.clear()
        self.idle.clear()
        for conn in conns:
            conn.close()

        async def closed(conn: _Connection) -> None:
            with contextlib.suppress(Exception):
                await conn.writer.wait_closed()

        if conns:  # let the transports finish closing (TLS says goodbye) for a moment at most
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*map(closed, conns)), 1.0)


class ViaTransport:
    """Through an httpx transport: an egress proxy's, or one a test gives."""

    def __init__(self, transport: httpx.AsyncBaseTransport, timeout: float) -> None:
        self.transport = transport
        self.timeouts = httpx.Timeout(timeout).as_dict()

    async def post(self, url: str, headers: list[tuple[bytes, bytes]], body: bytes,
                   limit: int) -> tuple[int, bytes]:
        request = httpx.Request("POST", url, content=body, headers=headers,
                                extensions={"timeout": self.timeouts})
        response = await self.transport.handle_async_request(request)
        try:
            chunks = bytearray()
            async for chunk in response.aiter_bytes():
                chunks += chunk
                if len(chunks) > limit:
                    break
        finally:
            await response.aclose()
        return response.status_code, bytes(chunks)

    def sweep(self, now: float) -> None:
        pass  # httpx's pool expires its own connections

    async def aclose(self) -> None:
        await self.transport.aclose()


def proxy_for(url: str) -> str | None:
    """The egress proxy the environment names for ``url`` (None: connect directly)."""
    parts = httpx.URL(url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(parts.host):
        return None
    return proxy


def exchange_for(url: str, *, allow_private: bool, connections: int,
                 timeout: float) -> Exchange:
    proxy = proxy_for(url)
    if proxy is not None:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        return ViaTransport(httpx.AsyncHTTPTransport(limits=limits, proxy=proxy), timeout)
    return Direct(url, allow_private=allow_private)

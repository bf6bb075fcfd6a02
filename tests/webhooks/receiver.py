"""A real webhook receiver on loopback for the tests: a threaded HTTP/1.1 server that records
every request (headers, body, arrival time) and answers as told."""

from __future__ import annotations

import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float
    status: int
    path: str = ""  # absolute ("http://host/…") when the receiver is asked as a proxy
    port: int = 0  # the sender's port: one per connection


@dataclass
class Receiver:
    """``answer(request_number_for_this_webhook_id) -> status``; 200 by default."""

    answer: Callable[[int], int] = lambda n: 200
    set_cookie: str | None = None  # a Set-Cookie header on every answer
    close_after: bool = False  # close each connection after its answer, saying nothing
    tls: ssl.SSLContext | None = None  # serve HTTPS with this server context
    names: list[str] = field(default_factory=list)  # the server names (SNI) clients asked for
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver.lock:
                    n = sum(1 for r in receiver.received
                            if r.headers.get("webhook-id") == headers.get("webhook-id"))
                    status = receiver.answer(n + 1)
                    receiver.received.append(Received(headers, body, time.time(), status,
                                                      self.path, self.client_address[1]))
                reply = b"ok" if status < 300 else b"nope, try later"
                self.send_response(status)
                self.send_header("content-length", str(len(reply)))
                if receiver.set_cookie is not None:
                    self.send_header("set-cookie", receiver.set_cookie)
                self.end_headers()
                self.wfile.write(reply)
                if receiver.close_after:  # no "connection: close": as if a keep-alive ended
                    self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # socketserver's 5 drops connections of busy senders

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a sender that went away (a killed worker): nothing to report

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        scheme = "http"
        if self.tls is not None:
            def named(sock: ssl.SSLSocket, name: str | None, context: ssl.SSLContext) -> None:
                self.names.append(name or "")
            self.tls.sni_callback = named
            self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def ids(self, ok_only: bool = True) -> Counter[str]:
        with self.lock:
            return Counter(r.headers["webhook-id"] for r in self.received
                           if not ok_only or r.status < 300)

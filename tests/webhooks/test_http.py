"""The worker's HTTP connections (haina.webhooks.http) against real servers on loopback:
kept alive and reused, given up when the receiver closes them, a request on a connection closed
as it was taken sent once more (and only once), answers cut at the excerpt, a slow receiver
bounded by the timeout, and an egress proxy from the environment honoured."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
import threading
import time

import pytest
from receiver import Receiver
from test_delivery import drain, endpoint, event

from haina.core.db import transaction
from haina.webhooks import egress, http, service
from haina.webhooks.delivery import Dispatcher


def _post(direct: http.Direct, url: str, n: int = 1, body: bytes = b'{"n":1}') -> list[int]:
    async def run() -> list[int]:
        try:
            return [(await direct.post(url, [(b"webhook-id", f"msg_{i}".encode())], body,
                                       100))[0] for i in range(n)]
        finally:
            await direct.aclose()
    return asyncio.run(run())


def _ports(receiver: Receiver) -> list[int]:
    return [r.port for r in receiver.received]


def test_one_connection_carries_many_messages(receiver):
    direct = http.Direct(receiver.url, allow_private=True)
    assert _post(direct, receiver.url, 5) == [200] * 5
    assert len(set(_ports(receiver))) == 1  # kept alive: one connection for all five
    assert [r.headers["webhook-id"] for r in receiver.received] == [f"msg_{i}" for i in range(5)]
    assert {r.headers["host"] for r in receiver.received} == {receiver.url.split("/")[2]}
    assert {r.body for r in receiver.received} == {b'{"n":1}'}


def test_a_connection_the_receiver_closed_is_not_reused(receiver):
    receiver.close_after = True  # closes after each answer, without "connection: close"

    async def run() -> list[int]:
        direct = http.Direct(receiver.url, allow_private=True)
        statuses = []
        for _ in range(3):
            statuses.append((await direct.post(receiver.url, [], b"{}", 100))[0])
            await asyncio.sleep(0.1)  # the close reaches this side
        await direct.aclose()
        return statuses

    assert asyncio.run(run()) == [200] * 3
    assert len(receiver.received) == 3 and len(set(_ports(receiver))) == 3


def test_a_connection_closed_as_it_was_taken_is_tried_once_more(receiver, monkeypatch):
    """The close arrives just after the connection was judged usable: the request fails
    before any answer and goes out again on a new connection, received once."""
    receiver.close_after = True
    monkeypatch.setattr(http._Connection, "usable", lambda self, now: True)

    async def run() -> list[int]:
        direct = http.Direct(receiver.url, allow_private=True)
        first = (await direct.post(receiver.url, [(b"webhook-id", b"a")], b"{}", 100))[0]
        await asyncio.sleep(0.1)
        second = (await direct.post(receiver.url, [(b"webhook-id", b"b")], b"{}", 100))[0]
        await direct.aclose()
        return [first, second]

    assert asyncio.run(run()) == [200, 200]
    assert [r.headers["webhook-id"] for r in receiver.received] == ["a", "b"]


def test_idle_connections_past_their_keepalive_are_swept(receiver):
    """An origin not sent to again does not keep its sockets while the worker runs."""
    async def run() -> tuple[int, int, bool]:
        direct = http.Direct(receiver.url, allow_private=True)
        await direct.post(receiver.url, [], b"{}", 100)
        [conn] = direct.idle
        direct.sweep(time.monotonic())  # fresh: kept
        kept = len(direct.idle)
        direct.sweep(time.monotonic() + http.KEEPALIVE + 1)
        return kept, len(direct.idle) + len(direct.open), conn.writer.is_closing()

    assert asyncio.run(run()) == (1, 0, True)


def test_a_long_answer_is_cut_and_its_connection_given_up():
    """Only the excerpt is read; the rest of a big answer is never waited for."""
    big = b"x" * 1_000_000
    server, url = _raw_server(
        b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(big) + big)
    direct = http.Direct(url, allow_private=True)

    async def run() -> tuple[int, bytes]:
        try:
            return await direct.post(url, [], b"{}", 100)
        finally:
            assert not direct.idle  # not reusable: the rest of the body is still coming
            await direct.aclose()

    status, head = asyncio.run(run())
    server.close()
    assert status == 200 and 100 < len(head) < len(big)


def test_an_answer_cut_short_is_not_sent_again():
    """The receiver began to answer, then closed: it may have acted on the message, so the
    request is an error of this attempt (retried on the schedule), not sent again at once."""
    accepted: list[int] = []
    server, url = _raw_server(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial",
                              close_after=0.2, accepted=accepted)
    with pytest.raises(http.ReceiverClosed) as closed:
        _post(http.Direct(url, allow_private=True), url)
    server.close()
    assert closed.value.answered and "complete message body" in str(closed.value)
    assert len(accepted) == 1


def test_a_receiver_that_never_answers_is_bounded_by_the_timeout(sessions, tenant):
    server, url = _raw_server(None)  # accepts, reads, never answers
    endpoint(sessions, tenant, url)
    event(sessions, tenant)
    assert drain(Dispatcher(sessions, timeout=0.5)) == 1
    server.close()
    with transaction(sessions) as s:
        [attempt] = service.list_attempts(s, tenant).data
    assert not attempt.succeeded and attempt.error == "no answer within 0.5 s"


def test_an_answer_that_breaks_http_is_an_error_not_a_crash(sessions, tenant):
    server, url = _raw_server(b"SMTP ready\r\n\r\n")
    endpoint(sessions, tenant, url)
    event(sessions, tenant)
    assert drain(Dispatcher(sessions)) == 1
    server.close()
    with transaction(sessions) as s:
        [attempt] = service.list_attempts(s, tenant).data
    assert not attempt.succeeded and attempt.status_code is None
    assert attempt.error.startswith("ReceiverClosed: the receiver broke HTTP/1.1")



def test_an_egress_proxy_in_the_environment_carries_the_messages(
        sessions, tenant, receiver, guarded, monkeypatch):
    """Behind an egress proxy the worker sends through it (the proxy is then the filter):
    the receiver here plays the proxy and sees the absolute URL."""
    monkeypatch.setenv("HTTP_PROXY", receiver.url.rsplit("/", 1)[0])
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    endpoint(sessions, tenant, "http://hooks.example.com/in")
    eid = event(sessions, tenant)
    assert drain(Dispatcher(sessions)) == 1
    [got] = receiver.received
    assert got.path == "http://hooks.example.com/in" and got.headers["webhook-id"] == eid
    with transaction(sessions) as s:
        [attempt] = service.list_attempts(s, tenant).data
    assert attempt.succeeded


def test_no_proxy_is_honoured(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "hooks.example.com")
    assert http.proxy_for("https://hooks.example.com/in") is None
    assert http.proxy_for("https://other.example.com/in") == "http://proxy.internal:3128"
    assert isinstance(http.exchange_for("https://other.example.com/in", allow_private=False,
                                        connections=2, timeout=1), http.ViaTransport)
    assert isinstance(http.exchange_for("https://hooks.example.com/in", allow_private=False,
                                        connections=2, timeout=1), http.Direct)


def test_https_goes_to_the_checked_address_and_verifies_the_name(monkeypatch, tmp_path):
    """TLS on the guarded path: the connection goes to the address the egress check returned
    while the certificate is checked against the endpoint's host name (sent as SNI)."""
    client_tls, server_tls = _tls(tmp_path, "hooks.example.com")
    receiver = Receiver(tls=server_tls).start()
    port = receiver.url.rsplit(":", 1)[1].split("/")[0]
    checked: list[str] = []

    async def checked_address(host: str, port: int) -> str:
        checked.append(host)
        return "127.0.0.1"

    monkeypatch.setattr(egress, "public_address", checked_address)
    url = f"https://hooks.example.com:{port}/in"
    try:
        direct = http.Direct(url, allow_private=False, ssl_context=client_tls)
        assert _post(direct, url, 2) == [200, 200]
    finally:
        receiver.stop()
    assert checked == ["hooks.example.com"]  # once: the second message reused the connection
    assert receiver.names == ["hooks.example.com"]
    assert {r.headers["host"] for r in receiver.received} == {f"hooks.example.com:{port}"}


def test_https_refuses_a_certificate_for_another_name(monkeypatch, tmp_path):
    client_tls, server_tls = _tls(tmp_path, "other.example.com")
    receiver = Receiver(tls=server_tls).start()
    port = receiver.url.rsplit(":", 1)[1].split("/")[0]

    async def checked_address(host: str, port: int) -> str:
        return "127.0.0.1"

    monkeypatch.setattr(egress, "public_address", checked_address)
    url = f"https://hooks.example.com:{port}/in"
    try:
        with pytest.raises(ssl.SSLCertVerificationError, match="hooks.example.com"):
            _post(http.Direct(url, allow_private=False, ssl_context=client_tls), url)
    finally:
        receiver.stop()
    assert receiver.received == []


def _tls(tmp_path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A test CA and a server certificate for ``name``: (the client's context trusting the
    CA, the server's context)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Haina test CA")])

    def built(subject, public_key, extensions):
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name)
             .public_key(public_key).serial_number(x509.random_serial_number())
             .not_valid_before(now - dt.timedelta(hours=1))
             .not_valid_after(now + dt.timedelta(hours=1)))
        for extension, critical in extensions:
            b = b.add_extension(extension, critical=critical)
        return b.sign(ca_key, hashes.SHA256())

    usage = dict(content_commitment=False, key_encipherment=False, data_encipherment=False,
                 key_agreement=False, encipher_only=False, decipher_only=False)
    ca = built(ca_name, ca_key.public_key(), [
        (x509.BasicConstraints(ca=True, path_length=None), True),
        (x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, **usage), True),
        (x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)])
    leaf = built(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]), key.public_key(), [
        (x509.SubjectAlternativeName([x509.DNSName(name)]), False),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        (x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False)])
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(
        cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    return client, server


def _raw_server(answer: bytes | None, close_after: float = 5,
                accepted: list[int] | None = None) -> tuple[socket.socket, str]:
    """A TCP server on loopback that reads a request and sends ``answer`` as it is (None:
    nothing, ever), then closes the connection after ``close_after`` seconds; ``accepted``
    counts its connections."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            if accepted is not None:
                accepted.append(1)
            conn.recv(65536)
            if answer is not None:
                try:
                    conn.sendall(answer)
                except OSError:
                    pass
            threading.Timer(close_after, conn.close).start()

    threading.Thread(target=serve, daemon=True).start()
    return server, f"http://127.0.0.1:{server.getsockname()[1]}/hook"

"""The last units: 50 buyers at once for 5 units, over a real HTTP server (uvicorn in its own
process) on SQLite and PostgreSQL. Exactly 5 orders are placed, the other 45 buyers get a
409 ``out-of-stock`` problem — never an oversell, never a 500 (a "database is locked", a
deadlock)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from support import make_tenant

BUYERS = 50
STOCK = 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, db_url: str, workdir: Path, token_cache_seconds: float = 5) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "uvicorn.log"
        env = {**os.environ, "HAINA_DATABASE_URL": db_url,
               "HAINA_MEDIA_DIR": str(workdir / "media"), "HAINA_TOKEN_CACHE_SECONDS": str(token_cache_seconds)}
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "haina.api:app_from_env", "--factory",
             "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"],
            env=env, cwd=workdir, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-5000:]

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"uvicorn did not answer /healthz in {timeout} s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            # the server runs in its own session: signal only its process group
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()


def start_server(db_url, sessions, tmp_path, request, **kwargs) -> Server:
    _, token = make_tenant(sessions)
    srv = Server(db_url, tmp_path, **kwargs)
    request.addfinalizer(srv.stop)  # killed whatever happens next
    srv.wait_ready()
    srv.token = token
    return srv


@pytest.fixture
def server(db_url, sessions, tmp_path, request):
    """A uvicorn process serving the test database, and a full-access token of a merchant
    (verified tokens are cached for 5 s, the default)."""
    return start_server(db_url, sessions, tmp_path, request)


@pytest.fixture
def cold_server(db_url, sessions, tmp_path, request):
    """The same with the token cache off: every request verifies its token in the database."""
    return start_server(db_url, sessions, tmp_path, request, token_cache_seconds=0)


def api(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, timeout=60,
                        headers={"Authorization": f"Bearer {server.token}"})


def create_product(client: httpx.Client, sku: str) -> dict:
    r = client.post("/v1/products", json={"sku": sku, "title": f"Tire {sku} 轮胎",
                                          "price": {"amount": "99.00", "currency": "CNY"},
                                          "stock": STOCK})
    assert r.status_code == 201, r.text
    return r.json()


def stampede(server: Server, bodies: list[dict]) -> list[httpx.Response]:
    """Each body POSTed to /v1/orders by its own thread, all released at once."""
    gate = threading.Barrier(len(bodies))
    results: list[httpx.Response | BaseException | None] = [None] * len(bodies)

    def buyer(i: int) -> None:
        with api(server) as c:
            c.get("/healthz")  # connect before the gate, so the requests go out together
            try:
                gate.wait(30)
                results[i] = c.post("/v1/orders", json=bodies[i])
            except BaseException as exc:  # noqa: BLE001 — reported below
                results[i] = exc

    threads = [threading.Thread(target=buyer, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a buyer never got an answer"
    failures = [r for r in results if not isinstance(r, httpx.Response)]
    assert not failures, f"{failures[:3]}\n{server.log()}"
    return results  # type: ignore[return-value]


def check_outcome(server: Server, responses: list[httpx.Response]) -> list[dict]:
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: STOCK, 409: BUYERS - STOCK}, (
        statuses, [r.text for r in responses if r.status_code not in (201, 409)][:3],
        server.log())
    for r in responses:
        if r.status_code == 409:
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["type"].endswith("out-of-stock"), r.text
    placed = [r.json() for r in responses if r.status_code == 201]
    assert all(o["status"] == "pending_payment" for o in placed)
    assert len({o["id"] for o in placed}) == STOCK
    with api(server) as c:
        listed = c.get("/v1/orders", params={"limit": 200}).json()
    assert sorted(o["id"] for o in listed["data"]) == sorted(o["id"] for o in placed)
    assert not listed["has_more"]
    assert "database is locked" not in server.log()
    assert "Traceback" not in server.log(), server.log()
    return placed


def test_fifty_buyers_for_the_last_five_units_get_exactly_five_orders(server):
    with api(server) as c:
        p = create_product(c, "LAST-1")
    responses = stampede(server, [{"lines": [{"sku": "LAST-1", "quantity": 1}]}] * BUYERS)
    placed = check_outcome(server, responses)
    assert all(o["lines"][0]["quantity"] == 1 for o in placed)
    with api(server) as c:
        stock = c.get(f"/v1/products/{p['id']}").json()["stock"]
        assert stock == {"on_hand": STOCK, "reserved": STOCK, "available": 0}
        # and one more buyer, afterwards, is still refused
        r = c.post("/v1/orders", json={"lines": [{"sku": "LAST-1", "quantity": 1}]})
        assert r.status_code == 409 and r.json()["type"].endswith("out-of-stock")


def test_two_line_orders_in_opposite_orders_neither_deadlock_nor_oversell(server):
    with api(server) as c:
        a, b = create_product(c, "PAIR-A"), create_product(c, "PAIR-B")
    ab = {"lines": [{"sku": "PAIR-A", "quantity": 1}, {"sku": "PAIR-B", "quantity": 1}]}
    ba = {"lines": [{"sku": "PAIR-B", "quantity": 1}, {"sku": "PAIR-A", "quantity": 1}]}
    responses = stampede(server, [ab if i % 2 else ba for i in range(BUYERS)])
    placed = check_outcome(server, responses)
    assert all(sorted(ln["sku"] for ln in o["lines"]) == ["PAIR-A", "PAIR-B"] for o in placed)
    with api(server) as c:
        for p in (a, b):
            stock = c.get(f"/v1/products/{p['id']}").json()["stock"]
            assert stock == {"on_hand": STOCK, "reserved": STOCK, "available": 0}


def test_fifty_buyers_whose_tokens_are_not_cached_get_exactly_five_orders(cold_server):
    """A burst of requests that all verify their token (the cache expires every few seconds,
    or many apps' tokens at once): still 5 orders and 45 clean 409s."""
    with api(cold_server) as c:
        p = create_product(c, "COLD-1")
    responses = stampede(cold_server, [{"lines": [{"sku": "COLD-1", "quantity": 1}]}] * BUYERS)
    check_outcome(cold_server, responses)
    with api(cold_server) as c:
        assert c.get(f"/v1/products/{p['id']}").json()["stock"]["available"] == 0

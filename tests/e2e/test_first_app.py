"""docs/apps.md, "build your first app", end to end against real servers: Haina (`haina
serve` with its worker) and the win-back app of docs/examples on uvicorn, both on loopback.
The merchant's owner installs the app through OAuth in a browser session (httpx with
cookies), the merchant sells through the SDK with a staff token, and the app receives the
signed `order.paid` webhook and reads the buyer with its own token."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from oauth_flow_e2e import form_fields
from support import run_cli

from haina.client import Haina
from haina.core.pgtemp import free_port

ROOT = Path(__file__).resolve().parents[2]


def haina_cli(url: str, *args: str, monkeypatch, capsys, stdin: str | None = None) -> str:
    """The command in this process (its own process is tests/platform/test_platform_cli.py's
    subject; `haina serve` below runs as one)."""
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code, out, err = run_cli(url, list(args), monkeypatch, capsys)
    assert code == 0, err
    return out


def wait_until(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
            if value:
                return value
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def load_example():
    spec = importlib.util.spec_from_file_location("winback_app",
                                                  ROOT / "docs" / "examples" / "winback_app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["winback_app"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_win_back_app_installs_hears_order_paid_and_reads_the_member(tmp_path, monkeypatch,
                                                                        capsys):
    url = f"sqlite:///{tmp_path / 'haina.db'}"
    haina_port, app_port = free_port(), free_port()
    haina_url, app_url = f"http://127.0.0.1:{haina_port}", f"http://127.0.0.1:{app_port}"
    run = {"monkeypatch": monkeypatch, "capsys": capsys}
    haina_cli(url, "migrate", **run)
    haina_cli(url, "tenants", "create", "acme", **run)
    haina_cli(url, "staff", "create", "--tenant", "acme", "--email", "owner@acme.example",
              stdin="owner's long password\n", **run)
    creds = json.loads(haina_cli(url, "apps", "create", "--name", "Win-back", "--category",
                                 "marketing", "--redirect-uri", f"{app_url}/callback",
                                 "--scopes", "orders:read members:read webhooks:write",
                                 "--json", **run))
    staff_token = haina_cli(url, "token", "create", "--tenant", "acme", **run).strip()

    server = subprocess.Popen([sys.executable, "-m", "haina.cli", "serve"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "HAINA_DATABASE_URL": url,
                                   "HAINA_PORT": str(haina_port)})
    example = load_example()
    web = example.create_app(haina_url, creds["client_id"], creds["client_secret"], app_url)
    app_server = uvicorn.Server(uvicorn.Config(web, host="127.0.0.1", port=app_port,
                                               log_level="warning"))
    thread = threading.Thread(target=app_server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: httpx.get(f"{haina_url}/healthz").status_code == 200)
        wait_until(lambda: app_server.started)
        # the owner installs: app → Haina's sign-in → consent → back to the app
        with httpx.Client(follow_redirects=False, timeout=30) as browser:
            r = browser.get(f"{app_url}/install")
            r = browser.get(r.headers["location"])
            assert r.headers["location"].startswith("/login")
            login = browser.get(haina_url + r.headers["location"])
            fields = form_fields(login.text, "/login")
            fields.update(email="owner@acme.example", password="owner's long password")
            r = browser.post(f"{haina_url}/login", data=fields)
            consent = browser.get(haina_url + r.headers["location"])
            assert "Win-back" in consent.text
            r = browser.post(f"{haina_url}/oauth/authorize",
                             data={**form_fields(consent.text, "/oauth/authorize"),
                                   "decision": "allow"})
            back = browser.get(r.headers["location"])  # the app's callback
            assert back.status_code == 200, back.text
            tenant_id = back.json()["installed"]

        # the merchant sells, with its own staff token, through the SDK
        with Haina(haina_url, staff_token) as shop:
            shop.products.create(title="Winter tire", sku="WT-16",
                                 price={"amount": "499.00", "currency": "CNY"}, stock=5)
            buyer = shop.members.create(name="Wang Fang", email="fang@example.cn")
            order = shop.orders.create(member_id=buyer.id, lines=[{"sku": "WT-16",
                                                                   "quantity": 1}])
            paid = shop.payments.create_intent(order.id, {"type": "cash"})
            assert paid.status == "succeeded"

        merchant = web.state.merchants[tenant_id]
        wait_until(lambda: buyer.id in merchant.last_bought)
        assert merchant.names[buyer.id] == "Wang Fang"  # read with the app's own token
        listed = httpx.get(f"{app_url}/winback", params={"tenant": tenant_id, "days": 0}).json()
        assert [m["member_id"] for m in listed] == [buyer.id]
        # the delivery is in Haina's log, signed and acknowledged by the app (the worker
        # records the attempt after the app has answered, so the log may trail the app a bit)
        with Haina(haina_url, staff_token) as shop:
            wait_until(lambda: any(d.event_type == "order.paid" for d in
                                   shop.webhooks.deliveries(status="succeeded").data))
    finally:
        app_server.should_exit = True
        thread.join(10)
        server.terminate()
        server.wait(15)

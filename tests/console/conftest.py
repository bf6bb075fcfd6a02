"""The console's fixtures: a shop with a paid order of a member, an app installed and a webhook
endpoint, and one signed-in browser (a TestClient with cookies) per staff role."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from haina.core.db import transaction
from haina.platform import service as platform

PASSWORD = "a long enough password"
ROLES = ("owner", "staff", "read-only")
CARD_OK = {"type": "card", "number": "4242424242424242"}


def form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:2000]
    return found.group(1)


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> TestClient:
    """Sign in as a browser does: the form at /console, posted to /login."""
    page = client.get("/console")
    assert page.status_code == 200 and 'type="password"' in page.text
    r = client.post("/login", data={"email": email, "password": password, "next": "/console",
                                    "csrf_token": form_token(page.text)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console", r.text
    return client


@pytest.fixture
def shop(app, client, sessions) -> dict[str, Any]:
    """Merchant ``acme`` (``client`` holds its API token): a product, and a member with a paid
    order."""
    r = client.post("/v1/products", json={"sku": "TIRE-1", "title": "Tire 轮胎", "stock": 10,
                                          "price": {"amount": "450.00", "currency": "CNY"}})
    assert r.status_code == 201, r.text
    member = client.post("/v1/members", json={"name": "Li Lei", "email": "li.lei@example.com"})
    assert member.status_code == 201, member.text
    order = client.post("/v1/orders", json={"member_id": member.json()["id"],
                                            "lines": [{"sku": "TIRE-1", "quantity": 2}]})
    assert order.status_code == 201, order.text
    pi = client.post("/v1/payment_intents", json={"order_id": order.json()["id"],
                                                  "payment_method": CARD_OK})
    assert pi.status_code == 201 and pi.json()["status"] == "succeeded", pi.text
    return {"member": member.json(), "order": order.json(), "intent": pi.json()}


@pytest.fixture
def browser_as(app, shop, sessions) -> Callable[[str], TestClient]:
    """A signed-in browser of ``acme`` for a role (its staff account made on first use: an
    argon2 hash costs tens of milliseconds, more on a loaded machine)."""
    opened: list[TestClient] = []

    def open_as(role: str) -> TestClient:
        assert role in ROLES
        with transaction(sessions) as s:
            platform.create_staff(s, "acme", f"{role}@acme.example", PASSWORD, role)
        c = TestClient(app)
        opened.append(c)
        return sign_in(c, f"{role}@acme.example")

    yield open_as
    for c in opened:
        c.close()

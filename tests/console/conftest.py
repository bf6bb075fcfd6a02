"""The console's fixtures: a shop with a paid order of a member, an app installed and a webhook
endpoint, and one signed-in browser (a TestClient with cookies) per staff role."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from console_support import PASSWORD, form_token, sign_in  # noqa: F401  (re-exported)
from fastapi.testclient import TestClient

from haina.core.db import transaction
from haina.platform import service as platform

ROLES = ("owner", "staff", "read-only")
CARD_OK = {"type": "card", "number": "4242424242424242"}


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

"""Every cart route through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest


def product(client, sku, amount="10.00", stock=50):
    r = client.post("/v1/products", json={"sku": sku, "title": sku,
                                          "price": {"amount": amount, "currency": "CNY"},
                                          "stock": stock})
    assert r.status_code == 201, r.text


def quantities(cart) -> dict[str, int]:
    return {ln["sku"]: ln["quantity"] for ln in cart["lines"]}


def test_setting_one_line_leaves_the_other_lines_alone(client):
    product(client, "TIRE-1", "100.00")
    product(client, "VALVE", "5.00")
    cart = client.post("/v1/carts", json={"lines": [{"sku": "TIRE-1", "quantity": 1},
                                                    {"sku": "VALVE", "quantity": 4}]}).json()
    r = client.put(f"/v1/carts/{cart['id']}/lines/TIRE-1", json={"quantity": 3})
    assert r.status_code == 200, r.text
    assert quantities(r.json()) == {"TIRE-1": 3, "VALVE": 4}
    assert r.json()["totals"]["subtotal"]["amount"] == "320.00"
    # and it was stored so, not only answered
    assert quantities(client.get(f"/v1/carts/{cart['id']}").json()) == {"TIRE-1": 3, "VALVE": 4}


def test_a_quantity_of_zero_removes_only_that_line(client):
    product(client, "A")
    product(client, "B")
    cart = client.post("/v1/carts", json={"lines": [{"sku": "A", "quantity": 2},
                                                    {"sku": "B", "quantity": 1}]}).json()
    r = client.put(f"/v1/carts/{cart['id']}/lines/A", json={"quantity": 0})
    assert quantities(r.json()) == {"B": 1}


def test_setting_a_line_the_cart_lacks_is_a_404(client):
    product(client, "A")
    cart = client.post("/v1/carts", json={"lines": [{"sku": "A", "quantity": 2}]}).json()
    r = client.put(f"/v1/carts/{cart['id']}/lines/NOPE", json={"quantity": 1})
    assert r.status_code == 404 and r.json()["type"].endswith("cart-line-not-found")
    assert quantities(client.get(f"/v1/carts/{cart['id']}").json()) == {"A": 2}


def test_adding_units_of_a_sku_already_in_the_cart_adds_to_its_line(client):
    product(client, "A", "2.50")
    cart = client.post("/v1/carts", json={}).json()
    assert cart["lines"] == [] and cart["totals"] is None and cart["status"] == "open"
    client.post(f"/v1/carts/{cart['id']}/lines", json={"sku": "A", "quantity": 2})
    r = client.post(f"/v1/carts/{cart['id']}/lines", json={"sku": "A", "quantity": 3})
    assert r.status_code == 200 and quantities(r.json()) == {"A": 5}
    assert r.json()["totals"]["subtotal"]["amount"] == "12.50"


def test_a_line_is_capped_at_ten_thousand_units(client):
    product(client, "A")
    cart = client.post("/v1/carts", json={"lines": [{"sku": "A", "quantity": 10_000}]}).json()
    r = client.post(f"/v1/carts/{cart['id']}/lines", json={"sku": "A", "quantity": 1})
    assert r.status_code == 422 and r.json()["type"].endswith("quantity-too-large")
    r = client.put(f"/v1/carts/{cart['id']}/lines/A", json={"quantity": 10_001})
    assert r.status_code == 422
    assert quantities(client.get(f"/v1/carts/{cart['id']}").json()) == {"A": 10_000}


def test_unknown_skus_and_carts_are_404(client):
    r = client.post("/v1/carts", json={"lines": [{"sku": "NOPE", "quantity": 1}]})
    assert r.status_code == 404 and r.json()["type"].endswith("sku-not-found")
    assert client.get("/v1/carts/cart_nope").status_code == 404
    cart = client.post("/v1/carts", json={}).json()
    r = client.post(f"/v1/carts/{cart['id']}/lines", json={"sku": "NOPE", "quantity": 1})
    assert r.status_code == 404


def test_another_merchants_cart_is_not_found(client, sessions):
    from fastapi.testclient import TestClient
    from support import make_tenant
    product(client, "A")
    cart = client.post("/v1/carts", json={"lines": [{"sku": "A", "quantity": 1}]}).json()
    _, other_token = make_tenant(sessions, "other")
    with TestClient(client.app) as other:
        other.headers["Authorization"] = f"Bearer {other_token}"
        assert other.get(f"/v1/carts/{cart['id']}").status_code == 404
        r = other.put(f"/v1/carts/{cart['id']}/lines/A", json={"quantity": 9})
        assert r.status_code == 404
    assert quantities(client.get(f"/v1/carts/{cart['id']}").json()) == {"A": 1}


def test_an_ordered_cart_is_closed_to_changes(client):
    product(client, "A")
    cart = client.post("/v1/carts", json={"lines": [{"sku": "A", "quantity": 1}]}).json()
    order = client.post(f"/v1/carts/{cart['id']}/checkout", json={})
    assert order.status_code == 201, order.text
    got = client.get(f"/v1/carts/{cart['id']}").json()
    assert got["status"] == "ordered" and got["order_id"] == order.json()["id"]
    for r in (client.post(f"/v1/carts/{cart['id']}/lines", json={"sku": "A", "quantity": 1}),
              client.put(f"/v1/carts/{cart['id']}/lines/A", json={"quantity": 2}),
              client.post(f"/v1/carts/{cart['id']}/checkout", json={})):
        assert r.status_code == 409 and r.json()["type"].endswith("cart-closed")


def test_an_empty_cart_cannot_be_checked_out(client):
    cart = client.post("/v1/carts", json={}).json()
    r = client.post(f"/v1/carts/{cart['id']}/checkout", json={})
    assert r.status_code == 422 and r.json()["type"].endswith("cart-empty")
    assert client.get(f"/v1/carts/{cart['id']}").json()["status"] == "open"


def test_a_failed_checkout_leaves_the_cart_open(client):
    product(client, "A", stock=1)
    cart = client.post("/v1/carts", json={"lines": [{"sku": "A", "quantity": 2}]}).json()
    r = client.post(f"/v1/carts/{cart['id']}/checkout", json={})
    assert r.status_code == 409 and r.json()["type"].endswith("out-of-stock")
    assert client.get(f"/v1/carts/{cart['id']}").json()["status"] == "open"


def test_the_list_of_carts_pages_and_filters_by_state_member_and_last_change(client, sessions):
    import datetime as dt

    from fastapi.testclient import TestClient
    from sqlalchemy import text
    from support import make_tenant
    product(client, "A")
    member = client.post("/v1/members", json={"name": "Li"}).json()
    made = [client.post("/v1/carts", json={"lines": [{"sku": "A", "quantity": i + 1}]}).json()
            for i in range(3)]
    mine = client.post("/v1/carts", json={"member_id": member["id"]}).json()
    ordered = client.post("/v1/carts", json={"lines": [{"sku": "A", "quantity": 1}]}).json()
    assert client.post(f"/v1/carts/{ordered['id']}/checkout", json={}).status_code == 201
    two_days_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    with sessions() as s, s.begin():  # the first cart was last touched two days ago
        s.execute(text("UPDATE carts SET updated_at = :t WHERE id = :id"),
                  {"t": two_days_ago.replace(tzinfo=None) if s.bind.dialect.name == "sqlite"
                   else two_days_ago, "id": made[0]["id"]})

    def ids(**params):
        r = client.get("/v1/carts", params=params)
        assert r.status_code == 200, r.text
        return [c["id"] for c in r.json()["data"]]

    newest_first = [ordered["id"], mine["id"], made[2]["id"], made[1]["id"], made[0]["id"]]
    assert ids() == newest_first
    first = client.get("/v1/carts", params={"limit": 2}).json()
    assert first["object"] == "list" and first["has_more"] and len(first["data"]) == 2
    summary = {c["id"]: c for c in client.get("/v1/carts").json()["data"]}
    assert summary[made[2]["id"]]["lines"] == 1 and summary[made[2]["id"]]["units"] == 3
    assert summary[ordered["id"]]["order_id"] and summary[ordered["id"]]["status"] == "ordered"
    rest = ids(limit=2, cursor=first["next_cursor"]) + ids(limit=2, cursor=ids(limit=4)[-1])
    assert rest == newest_first[2:]
    assert ids(status="ordered") == [ordered["id"]]
    assert ids(status="open") == newest_first[1:]
    assert ids(status="abandoned") == [made[0]["id"]]
    assert ids(member_id=member["id"]) == [mine["id"]]
    yesterday = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat()
    assert ids(updated_lt=yesterday) == [made[0]["id"]]
    assert ids(updated_gte=yesterday) == newest_first[:-1]
    assert ids(status="open", updated_gte=yesterday) == newest_first[1:-1]
    # refusals are problems: an unknown state, a cursor of another list, a limit out of
    # range, a time that is no time or has no UTC offset
    for params, slug in (({"status": "closed"}, "validation-error"),
                         ({"cursor": "ord_" + "0" * 26}, "invalid-cursor"),
                         ({"limit": 0}, "validation-error"),
                         ({"updated_gte": "yesterday"}, "validation-error"),
                         ({"updated_lt": "2026-01-01T00:00:00"}, "validation-error")):
        r = client.get("/v1/carts", params=params)
        assert r.status_code == 422 and r.json()["type"].endswith(slug), (params, r.text)
    # another merchant lists none of these
    _, other_token = make_tenant(sessions, "other")
    with TestClient(client.app) as other:
        other.headers["Authorization"] = f"Bearer {other_token}"
        r = other.get("/v1/carts")
        assert r.status_code == 200 and r.json()["data"] == []
        assert other.get("/v1/carts", params={"member_id": member["id"]}).json()["data"] == []


def _idle(sessions, cart_id, hours):
    """Mark a cart last touched ``hours`` ago (SQLite stores naive UTC times)."""
    import datetime as dt

    from sqlalchemy import text
    when = dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours)
    with sessions() as s, s.begin():
        s.execute(text("UPDATE carts SET updated_at = :t WHERE id = :id"),
                  {"t": when.replace(tzinfo=None) if s.bind.dialect.name == "sqlite" else when,
                   "id": cart_id})


def test_abandoned_carts_follow_the_merchants_abandoned_cart_hours(client, sessions):
    product(client, "A")
    carts = {h: client.post("/v1/carts", json={"lines": [{"sku": "A", "quantity": 1}]}).json()
             for h in (0, 1, 3, 25)}
    for hours, cart in carts.items():
        if hours:
            _idle(sessions, cart["id"], hours)

    def abandoned():
        r = client.get("/v1/carts", params={"status": "abandoned"})
        assert r.status_code == 200, r.text
        return {c["id"] for c in r.json()["data"]}

    settings = client.get("/v1/tenant").json()["settings"]
    assert settings["abandoned_cart_hours"] == 24  # the default: a day, as before
    assert abandoned() == {carts[25]["id"]}
    settings["abandoned_cart_hours"] = 2
    r = client.put("/v1/tenant/settings", json=settings)
    assert r.status_code == 200, r.text
    assert r.json()["settings"]["abandoned_cart_hours"] == 2
    # idle 3 hours: abandoned after 2; idle 1 hour: not yet
    assert abandoned() == {carts[3]["id"], carts[25]["id"]}
    # a last-change filter still narrows it
    import datetime as dt
    before = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=10)).isoformat()
    r = client.get("/v1/carts", params={"status": "abandoned", "updated_lt": before})
    assert {c["id"] for c in r.json()["data"]} == {carts[25]["id"]}


def test_settings_without_abandoned_cart_hours_keep_the_default_day(client):
    settings = client.get("/v1/tenant").json()["settings"]
    del settings["abandoned_cart_hours"]
    r = client.put("/v1/tenant/settings", json=settings)
    assert r.status_code == 200, r.text
    assert r.json()["settings"]["abandoned_cart_hours"] == 24


@pytest.mark.parametrize("hours", [0, 721])
def test_abandoned_cart_hours_out_of_bounds_is_a_422_problem(client, hours):
    settings = client.get("/v1/tenant").json()["settings"]
    r = client.put("/v1/tenant/settings", json=dict(settings, abandoned_cart_hours=hours))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "https://haina.dev/problems/validation-error", r.json()
    assert "abandoned_cart_hours" in r.text
    assert client.get("/v1/tenant").json()["settings"]["abandoned_cart_hours"] == 24


def test_abandoned_cart_hours_longer_than_carts_are_kept_is_refused(client):
    """Open carts are deleted after retention.abandoned_carts days: a threshold past that
    would never be reached."""
    settings = client.get("/v1/tenant").json()["settings"]
    body = dict(settings, abandoned_cart_hours=48,
                retention=dict(settings["retention"], abandoned_carts=1))
    r = client.put("/v1/tenant/settings", json=body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert "abandoned_cart_hours (48)" in r.text and "kept, 24 hours" in r.text
    assert client.get("/v1/tenant").json()["settings"]["retention"]["abandoned_carts"] == 90
    # a day is what a one-day retention still allows
    r = client.put("/v1/tenant/settings", json=dict(body, abandoned_cart_hours=24))
    assert r.status_code == 200, r.text

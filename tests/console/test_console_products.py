"""The console's products and stock over HTTP: the catalogue with price and stock (on hand,
held, available), search and the status filter; a product's page with its stock per location
and its stock changes; read only for every role; another merchant's product not found. On
SQLite and PostgreSQL."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_products_with_their_stock_and_a_products_page(browser_as, shop, client, sessions,
                                                       app):
    draft = client.post("/v1/products", json={
        "sku": "RIM-1", "title": "Rim 轮毂", "stock": 0, "status": "draft",
        "price": {"amount": "99.00", "currency": "CNY"}})
    assert draft.status_code == 201, draft.text
    tire = client.get("/v1/products", params={"q": "TIRE-1"}).json()["data"][0]
    moved = client.post("/v1/inventory/adjustments", json={
        "sku": "TIRE-1", "delta": 5, "reason": "received", "note": "from the supplier"})
    assert moved.status_code == 201, moved.text
    viewer = browser_as("read-only")
    page = viewer.get("/console/products").text
    assert "Tire 轮胎" in page and "Rim 轮毂" in page and "CN¥450.00" in page
    assert "<form method=\"post\"" not in page.split("</header>")[1]
    assert "Rim 轮毂" not in viewer.get("/console/products", params={"q": "tire"}).text
    drafts = viewer.get("/console/products", params={"status": "draft"}).text
    assert "Rim 轮毂" in drafts and "Tire 轮胎" not in drafts
    page = viewer.get(f"/console/products/{tire['id']}").text
    for shown in ("TIRE-1", "CN¥450.00", "received", "from the supplier", "+5",
                  f">{tire['stock']['on_hand'] + 5}<"):
        assert shown in page, shown
    zh = viewer.get("/console/products", params={"lang": "zh"}).text
    assert "商品" in zh and "草稿" in zh
    from support import make_tenant
    _, token = make_tenant(sessions, "globex")
    with TestClient(app) as them:
        them.headers["Authorization"] = f"Bearer {token}"
        theirs = them.post("/v1/products", json={
            "sku": "G-1", "title": "Globex thing", "stock": 3,
            "price": {"amount": "10.00", "currency": "CNY"}}).json()["id"]
    r = viewer.get(f"/console/products/{theirs}")
    assert r.status_code == 404 and "Globex thing" not in r.text
    assert "Globex thing" not in viewer.get("/console/products").text

"""What the catalog's API tests share."""

from __future__ import annotations


def money(amount="99.00", currency="CNY"):
    return {"amount": amount, "currency": currency}


def is_problem(r, status, slug):
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == f"https://haina.dev/problems/{slug}", r.json()
    return r.json()


def search(client, **params):
    r = client.get("/v1/products", params=params)
    assert r.status_code == 200, r.text
    return sorted(p["sku"] for p in r.json()["data"])

"""Helpers shared by the storefront tests: a tire merchant with a fitting shop and a
publishable key, and a buyer signed in through the sandbox inbox."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
HERE = {"lat": 31.2304, "lng": 121.4737}
HOURS = [{"weekday": d, "open": "09:00", "close": "18:00"} for d in range(1, 8)]


def ok(r, status=(200, 201, 202, 204)):
    assert r.status_code in ((status,) if isinstance(status, int) else status), r.text
    return r.json() if r.content else None


def tire_shop(client, sku="TIRE-16", title="轮胎 R16 静音", stock=20) -> dict:
    """Through the merchant API (the client's staff token): a listed tire, a draft one, a
    fitting shop nearby and the rule that tires need fitting. Returns the ids."""
    tire = ok(client.post("/v1/products", json={
        "sku": sku, "title": title, "price": {"amount": "500.00", "currency": "CNY"},
        "stock": stock, "attributes": {"rim_diameter": 16}}))
    draft = ok(client.post("/v1/products", json={
        "sku": f"{sku}-DRAFT", "title": f"{title} (draft)", "status": "draft",
        "price": {"amount": "1.00", "currency": "CNY"}, "stock": 5,
        "attributes": {"rim_diameter": 16}}))
    point = ok(client.post("/v1/service-points", json={
        "name": "途虎工场店", "location": {**HERE, "datum": "wgs84"}, "opening_hours": HOURS,
        "services": [{"code": "tire-fitting", "duration_minutes": 60, "capacity": 2,
                      "price": {"amount": "80.00", "currency": "CNY"}}],
        "fitment": {"rim_diameter": [15, 19]}}))
    rules = client.get("/v1/fitment-rules").json()["data"]
    if not any(r["attribute"] == "rim_diameter" for r in rules):
        ok(client.post("/v1/fitment-rules", json={"service": "tire-fitting",
                                                  "attribute": "rim_diameter"}))
    return {"tire": tire, "draft": draft, "point": point}


def make_key(client, channel="web", sandbox=True, origins=()) -> str:
    return ok(client.post("/v1/storefront/keys", json={
        "name": f"{channel} shop", "channel": channel, "sandbox": sandbox,
        "allowed_origins": list(origins)}))["key"]


def sign_in(client, key: str, phone: str) -> dict:
    """Ask for a code, read it from the sandbox inbox, verify: the session."""
    h = {"X-Publishable-Key": key}
    phone = ok(client.post("/store/v1/sign-in/codes", headers=h, json={"phone": phone}))["phone"]
    inbox = ok(client.get("/store/v1/sandbox/inbox", headers=h))["data"]
    code = next(m["code"] for m in inbox if m["phone"] == phone)
    return ok(client.post("/store/v1/sign-in/verify", headers=h,
                          json={"phone": phone, "code": code}))


def buyer_headers(key: str, session: dict) -> dict:
    return {"X-Publishable-Key": key, "Authorization": f"Bearer {session['access_token']}"}


def slot_start(days=5, hour=10) -> str:
    day = dt.datetime.now(SHANGHAI).date() + dt.timedelta(days=days)
    return dt.datetime.combine(day, dt.time(hour), tzinfo=SHANGHAI).isoformat()

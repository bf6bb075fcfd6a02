"""Service points through the API: the contract's body, GCJ-02 stored as WGS-84, hours,
services, fitment, pagination, slots, fitment rules, and merchants kept apart."""

from __future__ import annotations

import datetime as dt

import pytest
from o2o_support import SHANGHAI, make_point, point_body
from support import make_tenant

from haina.o2o import geo


def test_the_contracts_body_creates_a_point_with_its_service_and_fitment(client):
    body = {"name": "Xuhui tire bay", "location": {"lat": 31.23, "lng": 121.47, "datum": "wgs84"},
            "timezone": "Asia/Shanghai",
            "opening_hours": [{"weekday": 1, "open": "09:00", "close": "18:00"}],
            "services": [{"code": "tire-fitting", "duration_minutes": 60, "capacity": 2,
                          "price": {"amount": "80.00", "currency": "CNY"}}],
            "fitment": {"rim_diameter": [15, 19]}}
    r = client.post("/v1/service-points", json=body, headers={"Idempotency-Key": "sp-1"})
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["id"].startswith("sp_") and p["status"] == "active"
    assert p["location"] == {"lat": 31.23, "lng": 121.47, "datum": "wgs84"}
    assert p["services"][0]["capacity"] == 2 and p["services"][0]["price"]["amount"] == "80.00"
    assert p["fitment"] == {"rim_diameter": [15.0, 19.0]}
    assert p["h3_cells"]["7"] == geo.cells_of(31.23, 121.47)[7]
    again = client.post("/v1/service-points", json=body, headers={"Idempotency-Key": "sp-1"})
    assert again.json()["id"] == p["id"] and again.headers["Idempotent-Replayed"] == "true"
    # weekday 1 is Monday: 2026-12-07 is one, 2026-12-08 is not
    monday = client.get(f"/v1/service-points/{p['id']}/slots",
                        params={"service": "tire-fitting", "date": "2026-12-07"}).json()
    assert [s["start"] for s in monday["data"]][:2] == ["2026-12-07T09:00:00+08:00",
                                                        "2026-12-07T10:00:00+08:00"]
    assert len(monday["data"]) == 9
    tuesday = client.get(f"/v1/service-points/{p['id']}/slots",
                         params={"service": "tire-fitting", "date": "2026-12-08"}).json()
    assert tuesday["data"] == []


def test_a_gcj02_position_is_stored_as_wgs84_and_shown_in_both(client):
    glat, glng = 31.2304, 121.4737  # as AMap shows the Bund
    p = make_point(client, lat=glat, lng=glng, datum="gcj02")
    wlat, wlng = geo.gcj02_to_wgs84(glat, glng)
    assert geo.haversine_km(p["location"]["lat"], p["location"]["lng"], wlat, wlng) < 0.001
    assert geo.haversine_km(p["location_gcj02"]["lat"], p["location_gcj02"]["lng"],
                            glat, glng) < 0.001
    assert geo.haversine_km(glat, glng, wlat, wlng) > 0.3  # the datums differ here


@pytest.mark.parametrize("change, where", [
    ({"location": {"lat": 91, "lng": 0}}, "lat"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"opening_hours": [{"weekday": 0, "open": "09:00", "close": "18:00"}]}, "weekday"),
    ({"opening_hours": [{"weekday": 1, "open": "9am", "close": "18:00"}]}, "open"),
    ({"opening_hours": [{"weekday": 1, "open": "09:00", "close": "18:00"},
                        {"weekday": 1, "open": "17:00", "close": "20:00"}]}, "overlap"),
    ({"fitment": {"rim_diameter": [19, 15]}}, "above max"),
    ({"services": [{"code": "Tire Fitting", "duration_minutes": 60,
                    "price": {"amount": "1.00", "currency": "CNY"}}]}, "code"),
])
def test_bad_points_are_refused_with_the_field_named(client, change, where):
    r = client.post("/v1/service-points", json={**point_body(), **change})
    assert r.status_code == 422, r.text
    assert where in r.text


def test_points_are_listed_in_pages_changed_and_closed(client):
    ids = [make_point(client, name=f"Shop {i}")["id"] for i in range(3)]
    page = client.get("/v1/service-points", params={"limit": 2}).json()
    assert [p["id"] for p in page["data"]] == ids[::-1][:2] and page["has_more"]
    rest = client.get("/v1/service-points", params={"limit": 2,
                                                     "cursor": page["next_cursor"]}).json()
    assert [p["id"] for p in rest["data"]] == [ids[0]] and not rest["has_more"]
    r = client.patch(f"/v1/service-points/{ids[0]}", json={
        "status": "closed", "exceptions": [{"date": "2026-12-25"}],
        "location": {"lat": 30.27, "lng": 120.16}})
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["status"] == "closed" and p["exceptions"][0]["date"] == "2026-12-25"
    assert p["h3_cells"]["7"] == geo.cells_of(30.27, 120.16)[7]
    assert client.patch(f"/v1/service-points/{ids[0]}", json={"name": None}).status_code == 422
    closed = client.get("/v1/service-points", params={"status": "closed"}).json()["data"]
    assert [p["id"] for p in closed] == [ids[0]]


def test_services_are_added_and_changed_and_their_codes_are_unique(client):
    p = make_point(client)
    wash = {"code": "car-wash", "duration_minutes": 30, "capacity": 1,
            "buffer_after_minutes": 10, "price": {"amount": "40.00", "currency": "CNY"}}
    r = client.post(f"/v1/service-points/{p['id']}/services", json=wash)
    assert r.status_code == 201, r.text
    assert [s["code"] for s in r.json()["services"]] == ["car-wash", "tire-fitting"]
    again = client.post(f"/v1/service-points/{p['id']}/services", json=wash)
    assert again.status_code == 409 and again.json()["type"].endswith("/service-exists")
    r = client.patch(f"/v1/service-points/{p['id']}/services/car-wash", json={"capacity": 3})
    assert r.json()["services"][0]["capacity"] == 3
    slots = client.get(f"/v1/service-points/{p['id']}/slots",
                       params={"service": "car-wash", "date": "2026-12-07"}).json()["data"]
    assert len(slots) == 13  # 09:00-18:00 in 40-minute steps (30 + 10 after)
    missing = client.get(f"/v1/service-points/{p['id']}/slots",
                         params={"service": "nails", "date": "2026-12-07"})
    assert missing.status_code == 404 and missing.json()["type"].endswith("/service-not-found")
    usd = {**wash, "code": "usd", "price": {"amount": "1.00", "currency": "USD"}}
    assert client.post(f"/v1/service-points/{p['id']}/services", json=usd).status_code == 422


def test_fitment_rules_name_a_category_or_an_attribute(client):
    cat = client.post("/v1/categories", json={"name": "Tires", "slug": "tires"}).json()
    r = client.post("/v1/fitment-rules", json={"service": "tire-fitting",
                                                "category_id": cat["id"]})
    assert r.status_code == 201, r.text
    assert client.post("/v1/fitment-rules", json={"service": "tire-fitting"}).status_code == 422
    assert client.post("/v1/fitment-rules", json={
        "service": "x", "category_id": "cat_nope"}).status_code == 404
    client.post("/v1/fitment-rules", json={"service": "glasses-fitting", "attribute": "lens"})
    rules = client.get("/v1/fitment-rules").json()["data"]
    assert [r["service"] for r in rules] == ["tire-fitting", "glasses-fitting"]
    assert client.delete(f"/v1/fitment-rules/{rules[0]['id']}").status_code == 204
    assert len(client.get("/v1/fitment-rules").json()["data"]) == 1


def test_another_merchant_sees_none_of_a_merchants_points(client, sessions):
    p = make_point(client)
    _, other = make_tenant(sessions, "other")
    h = {"Authorization": f"Bearer {other}"}
    assert client.get(f"/v1/service-points/{p['id']}", headers=h).status_code == 404
    assert client.get("/v1/service-points", headers=h).json()["data"] == []
    near = client.get("/v1/service-points/nearby", headers=h,
                      params={"lat": SHANGHAI[0], "lng": SHANGHAI[1], "radius_km": 5}).json()
    assert near["data"] == []
    assert client.get(f"/v1/service-points/{p['id']}/slots", headers=h, params={
        "service": "tire-fitting", "date": dt.date.today().isoformat()}).status_code == 404

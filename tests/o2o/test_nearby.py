"""Nearby points and search against brute force on random data (hypothesis): only open,
in-radius points that offer the service and fit the goods, nearest first — SQLite and
PostgreSQL."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from o2o_support import make_point

from haina.core.db import transaction
from haina.o2o import geo
from haina.o2o import service as o2o
from haina.platform import service as platform

CENTRE = (31.2304, 121.4737)  # Shanghai, WGS-84


@pytest.fixture
def scattered(client, sessions):
    """60 points within ~60 km of the centre: some closed, some without the service, with
    rim ranges of their own."""
    rnd = random.Random(5)
    points = []
    for i in range(60):
        lat = CENTRE[0] + rnd.uniform(-0.5, 0.5)
        lng = CENTRE[1] + rnd.uniform(-0.6, 0.6)
        lo = rnd.choice([13, 15, 16, 17])
        body = dict(name=f"P{i}", lat=lat, lng=lng, fitment={"rim_diameter": [lo, lo + 3]})
        if i % 7 == 0:
            body["services"] = [{"code": "car-wash", "duration_minutes": 30,
                                 "price": {"amount": "30.00", "currency": "CNY"}}]
        p = make_point(client, **body)
        closed = i % 5 == 0
        if closed:
            client.patch(f"/v1/service-points/{p['id']}", json={"status": "closed"})
        points.append({"id": p["id"], "lat": p["location"]["lat"], "lng": p["location"]["lng"],
                       "rim": (lo, lo + 3), "open": not closed, "tires": i % 7 != 0})
    with transaction(sessions) as s:
        tenant = platform.tenant_for_slug(s, "acme")
    return tenant, points


def brute_force(points, lat, lng, radius, rim=None):
    found = [(geo.haversine_km(lat, lng, p["lat"], p["lng"]), p["id"]) for p in points
             if p["open"] and p["tires"] and (rim is None or p["rim"][0] <= rim <= p["rim"][1])]
    return [pid for d, pid in sorted(found) if d <= radius]


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dlat=st.floats(-0.5, 0.5), dlng=st.floats(-0.6, 0.6), radius=st.floats(0.5, 60),
       rim=st.none() | st.integers(13, 20), limit=st.integers(1, 12))
def test_nearby_points_are_exactly_the_open_fitting_ones_in_the_radius_nearest_first(
        scattered, sessions, dlat, dlng, radius, rim, limit):
    tenant, points = scattered
    lat, lng = CENTRE[0] + dlat, CENTRE[1] + dlng
    attrs = {"rim_diameter": rim} if rim is not None else {}
    expected = brute_force(points, lat, lng, radius, rim)
    with transaction(sessions) as s:
        found = o2o.points_within(s, tenant, lat, lng, radius, "tire-fitting")
        # the ring-by-ring search of the k nearest
        knn = o2o.nearest(s, tenant, lat, lng, radius, limit, "tire-fitting", attrs)
    ours = [p.id for d, p in found if o2o.fits(p.fitment, attrs)]
    assert ours == expected
    distances = [d for d, _ in found]
    assert distances == sorted(distances)
    assert [i for _, i in knn] == expected[:limit]


def test_search_shows_beside_tires_the_points_that_fit_them_with_free_slots(client, sessions):
    cat = client.post("/v1/categories", json={"name": "轮胎 Tires", "slug": "tires"}).json()
    client.post("/v1/fitment-rules", json={"service": "tire-fitting", "category_id": cat["id"]})
    for sku, rim in (("T-16", 16), ("T-21", 21)):
        r = client.post("/v1/products", json={
            "sku": sku, "title": f"米其林 轮胎 R{rim}", "category_id": cat["id"],
            "price": {"amount": "500.00", "currency": "CNY"},
            "attributes": {"rim_diameter": rim}})
        assert r.status_code == 201, r.text
    client.post("/v1/products", json={"sku": "CAP", "title": "轮胎 气门帽 valve caps",
                                      "price": {"amount": "15.00", "currency": "CNY"}})
    near = make_point(client, name="Near", lat=CENTRE[0] + 0.01, lng=CENTRE[1])
    far = make_point(client, name="Far", lat=CENTRE[0] + 0.05, lng=CENTRE[1])
    make_point(client, name="Too far", lat=CENTRE[0] + 0.5, lng=CENTRE[1])
    make_point(client, name="Small rims", lat=CENTRE[0], lng=CENTRE[1] + 0.01,
               fitment={"rim_diameter": [13, 15]})
    glat, glng = geo.wgs84_to_gcj02(*CENTRE)  # the buyer's phone map speaks GCJ-02
    r = client.get("/v1/search", params={"q": "轮胎", "lat": glat, "lng": glng,
                                         "radius_km": 10, "datum": "gcj02"})
    assert r.status_code == 200, r.text
    by_sku = {p["sku"]: p for p in r.json()["products"]}
    assert set(by_sku) == {"T-16", "T-21", "CAP"}
    t16 = by_sku["T-16"]
    assert t16["service"] == "tire-fitting"
    assert [p["id"] for p in t16["service_points"]] == [near["id"], far["id"]]
    assert 1.0 < t16["service_points"][0]["distance_km"] < 1.2  # 0.01° of latitude: 1.11 km
    slots = t16["service_points"][0]["next_slots"]
    assert len(slots) == 3 and all(s["available"] == 2 for s in slots)
    assert slots[0]["start"] < slots[1]["start"] < slots[2]["start"]
    assert by_sku["T-21"]["service_points"] == []  # no point fits 21" rims
    assert by_sku["CAP"]["service"] is None and by_sku["CAP"]["service_points"] == []
    # nearby on its own, for one product
    t16_id = t16["id"]
    near_list = client.get("/v1/service-points/nearby", params={
        "lat": CENTRE[0], "lng": CENTRE[1], "radius_km": 10, "service": "tire-fitting",
        "product_id": t16_id}).json()["data"]
    assert [p["name"] for p in near_list] == ["Near", "Far"]
    all_near = client.get("/v1/service-points/nearby", params={
        "lat": CENTRE[0], "lng": CENTRE[1], "radius_km": 10}).json()["data"]
    # 0.01° of longitude is 0.95 km here, of latitude 1.11 km
    assert [p["name"] for p in all_near] == ["Small rims", "Near", "Far"]
    assert all(p["next_slots"] == [] for p in all_near)  # no service named: no slots


def test_a_dense_cluster_starts_fine_and_still_answers_exactly(session, tenant):
    """120 points within ~1.5 km and 40 spread over ~30 km: the density starts a search
    near the cluster with fine cells (and one far from it with coarse ones); a rim few points
    fit sends it on to the coarse phase. Every answer is the brute force's."""
    from haina.o2o.schemas import ServicePointCreate
    rnd = random.Random(9)
    points = []
    for i in range(160):
        spread = 0.012 if i < 120 else 0.25
        lat, lng = CENTRE[0] + rnd.gauss(0, spread), CENTRE[1] + rnd.gauss(0, spread)
        lo = rnd.choice([15, 15, 15, 16, 18])
        p = o2o.create_point(session, tenant, ServicePointCreate.model_validate({
            "name": f"P{i}", "location": {"lat": lat, "lng": lng},
            "services": [{"code": "tire-fitting", "duration_minutes": 60,
                          "price": {"amount": "80.00", "currency": "CNY"}}],
            "fitment": {"rim_diameter": [lo, lo + 1]}}))
        points.append({"id": p.id, "lat": p.location.lat, "lng": p.location.lng,
                       "rim": (lo, lo + 1), "open": True, "tires": True})
    for dlat, dlng, radius, rim, limit in [(0, 0, 10, None, 10), (0.003, -0.002, 5, 15, 12),
                                           (0, 0, 10, 19, 5), (0.001, 0, 20, 18, 8),
                                           (0.2, 0.2, 10, None, 10), (0, 0, 2, 16, 10)]:
        lat, lng = CENTRE[0] + dlat, CENTRE[1] + dlng
        attrs = {"rim_diameter": rim} if rim is not None else None
        got = o2o.nearest(session, tenant, lat, lng, radius, limit, "tire-fitting", attrs)
        assert [i for _, i in got] == brute_force(points, lat, lng, radius, rim)[:limit]


def _point(session, tenant, name, lat, lng, fitment, code="tire-fitting"):
    from haina.o2o.schemas import ServicePointCreate
    return o2o.create_point(session, tenant, ServicePointCreate.model_validate({
        "name": name, "location": {"lat": lat, "lng": lng},
        "services": [{"code": code, "duration_minutes": 60,
                      "price": {"amount": "80.00", "currency": "CNY"}}],
        "fitment": fitment}))


def test_a_search_answers_each_product_as_its_own_nearest_query_would(session, tenant):
    """Products of several rim sizes searched at once (one nearest query for all of them)
    each get exactly the points a brute force finds for them alone: among points with rim
    ranges, value lists, other rules or none, and points without the service."""
    from haina.catalog import service as catalog
    from haina.catalog.schemas import ProductCreate
    from haina.o2o.schemas import FitmentRuleIn
    rnd = random.Random(11)
    kinds = [lambda lo: {"rim_diameter": [lo, lo + 2]},
             lambda lo: {"rim_diameter": [str(lo), str(lo + 1), str(lo + 3)]},
             lambda lo: {}, lambda lo: {"vehicle_type": ["suv"]}]
    points = []
    for i in range(70):
        lat, lng = CENTRE[0] + rnd.gauss(0, 0.05), CENTRE[1] + rnd.gauss(0, 0.05)
        fitment = rnd.choice(kinds)(rnd.choice([14, 15, 16, 17]))
        tires = i % 6 != 0
        p = _point(session, tenant, f"P{i}", lat, lng, fitment,
                   "tire-fitting" if tires else "car-wash")
        points.append({"id": p.id, "lat": p.location.lat, "lng": p.location.lng,
                       "fitment": fitment, "tires": tires})
    o2o.create_rule(session, tenant, FitmentRuleIn(service="tire-fitting",
                                                   attribute="rim_diameter"))
    goods = {}
    for rim, vehicle in ((14, "car"), (15, "car"), (16, "suv"), (17, "car"), (18, "suv"),
                         (21, "car")):
        product = catalog.create_product(session, tenant, ProductCreate.model_validate({
            "title": f"Tire R{rim}", "sku": f"TIRE-{rim}",
            "price": {"amount": "500.00", "currency": "CNY"},
            "attributes": {"rim_diameter": rim, "vehicle_type": vehicle}}))
        goods[product.id] = {"rim_diameter": rim, "vehicle_type": vehicle}
    for dlat, dlng, radius in [(0, 0, 5), (0.02, -0.01, 2), (0.1, 0.1, 20), (-0.05, 0, 1),
                               (0.3, 0.3, 10)]:
        lat, lng = CENTRE[0] + dlat, CENTRE[1] + dlng
        out = o2o.search(session, tenant, "Tire", lat, lng, radius)
        assert len(out.products) == len(goods)
        for product in out.products:
            attrs = goods[product.id]
            expected = sorted((geo.haversine_km(lat, lng, p["lat"], p["lng"]), p["id"])
                              for p in points if p["tires"] and o2o.fits(p["fitment"], attrs))
            assert [p.id for p in product.service_points] == [
                i for d, i in expected if d <= radius][:5], (attrs, dlat, dlng, radius)


def test_a_point_is_found_by_the_service_added_to_it_and_where_it_moved(session, tenant):
    from haina.o2o.schemas import ServiceIn, ServicePointUpdate
    wash = _point(session, tenant, "Wash", CENTRE[0] + 0.01, CENTRE[1], {}, code="car-wash")
    assert o2o.nearest(session, tenant, *CENTRE, 10, 5, "tire-fitting") == []
    o2o.add_service(session, tenant, wash.id, ServiceIn.model_validate({
        "code": "tire-fitting", "duration_minutes": 60,
        "price": {"amount": "80.00", "currency": "CNY"}}))
    assert [i for _, i in o2o.nearest(session, tenant, *CENTRE, 10, 5, "tire-fitting")] == [
        wash.id]
    assert [i for _, i in o2o.nearest(session, tenant, *CENTRE, 10, 5, "car-wash")] == [wash.id]
    hangzhou = (30.2741, 120.1551)
    o2o.update_point(session, tenant, wash.id, ServicePointUpdate.model_validate(
        {"location": {"lat": hangzhou[0], "lng": hangzhou[1]}}))
    assert o2o.nearest(session, tenant, *CENTRE, 10, 5, "tire-fitting") == []
    assert [i for _, i in o2o.nearest(session, tenant, *hangzhou, 1, 5)] == [wash.id]
    listed = o2o.nearby(session, tenant, *hangzhou, 1).data
    assert [(p.id, p.services) for p in listed] == [(wash.id, ["car-wash", "tire-fitting"])]


def test_points_with_long_fitment_or_many_services_are_found_like_the_others(session, tenant):
    """On PostgreSQL the search reads points whose service codes and fitment are short from
    an index that holds those columns, and the others from a plain index (migration 0026):
    points of both kinds, mixed, answer exactly as a brute force does; a point that becomes
    long or short again (its fitment changed) moves between the two."""
    from sqlalchemy import text

    from haina.o2o.models import BAND_SHORT
    from haina.o2o.schemas import ServiceIn, ServicePointUpdate
    rnd = random.Random(13)
    long_list = [f"vehicle-model-{i:03d}-with-a-long-name" for i in range(12)]
    extra = [f"service-{i}-{'x' * 50}" for i in range(8)]  # 8 x ~60 chars: codes > 400 bytes
    points = []
    for i in range(90):
        lat, lng = CENTRE[0] + rnd.gauss(0, 0.02), CENTRE[1] + rnd.gauss(0, 0.02)
        lo = rnd.choice([14, 15, 16, 17])
        fitment: dict = {"rim_diameter": [lo, lo + 2]}
        if i % 3 == 0:
            fitment["vehicle_model"] = long_list  # > 300 bytes of fitment
        p = _point(session, tenant, f"P{i}", lat, lng, fitment)
        if i % 4 == 0:
            for code in extra:
                o2o.add_service(session, tenant, p.id, ServiceIn.model_validate({
                    "code": code, "duration_minutes": 30,
                    "price": {"amount": "10.00", "currency": "CNY"}}))
        points.append({"id": p.id, "lat": p.location.lat, "lng": p.location.lng,
                       "rim": (lo, lo + 2), "open": True, "tires": True})
    session.flush()
    short = session.execute(text(
        f"SELECT count(*) FROM service_points WHERE tenant_id = :t AND {BAND_SHORT.format(p='')}"
        if session.get_bind().dialect.name == "postgresql" else
        "SELECT count(*) FROM service_points WHERE tenant_id = :t AND "
        "length(service_codes) <= 400 AND length(fitment) <= 300"), {"t": tenant.id}).scalar()
    assert 0 < short < 90  # both kinds are there
    for dlat, dlng, radius, rim, limit in [(0, 0, 10, None, 10), (0.01, -0.01, 5, 15, 12),
                                           (0, 0, 10, 17, 5), (0.02, 0, 3, 16, 30),
                                           (0, 0, 10, 19, 10)]:
        lat, lng = CENTRE[0] + dlat, CENTRE[1] + dlng
        attrs = {"rim_diameter": rim} if rim is not None else None
        got = o2o.nearest(session, tenant, lat, lng, radius, limit, "tire-fitting", attrs)
        assert [i for _, i in got] == brute_force(points, lat, lng, radius, rim)[:limit]
    # the nearest point changes kind both ways and is still found first
    first = brute_force(points, *CENTRE, 10)[0]
    o2o.update_point(session, tenant, first, ServicePointUpdate.model_validate(
        {"fitment": {"rim_diameter": [10, 30], "vehicle_model": long_list}}))
    assert o2o.nearest(session, tenant, *CENTRE, 10, 1, "tire-fitting",
                       {"rim_diameter": 29})[0][1] == first
    o2o.update_point(session, tenant, first, ServicePointUpdate.model_validate(
        {"fitment": {"rim_diameter": [28, 30]}}))
    assert [i for _, i in o2o.nearest(session, tenant, *CENTRE, 10, 5, "tire-fitting",
                                      {"rim_diameter": 29})] == [first]


def test_one_goods_with_numeric_attributes_meets_value_lists_and_other_rules(session, tenant):
    """One goods whose attributes are all numbers: on PostgreSQL the statement decides the
    points whose rules for them are ranges itself and answers the fitment of the others
    (value lists, text) for ``fits``; every answer is the brute force's."""
    rnd = random.Random(21)
    kinds = [{"rim_diameter": [15, 18]}, {"rim_diameter": ["17", "18"]},
             {"rim_diameter": [16, 17], "width": [195, 225]}, {"width": ["205"]},
             {"vehicle_type": ["suv"]}, {}]
    points = []
    for i in range(60):
        fitment = kinds[i % len(kinds)]
        p = _point(session, tenant, f"P{i}", CENTRE[0] + rnd.gauss(0, 0.02),
                   CENTRE[1] + rnd.gauss(0, 0.02), fitment)
        points.append((p.id, p.location.lat, p.location.lng, fitment))
    for attrs in ({"rim_diameter": 17}, {"rim_diameter": 18.0, "width": 205},
                  {"rim_diameter": 17, "width": 230}, {"width": 205}):
        for lat, lng, limit in [(CENTRE[0], CENTRE[1], 10), (CENTRE[0] + 0.01, CENTRE[1], 25)]:
            expected = sorted(
                (geo.haversine_km(lat, lng, plat, plng), pid) for pid, plat, plng, f in points
                if o2o.fits(f, attrs) and geo.haversine_km(lat, lng, plat, plng) <= 10)
            got = o2o.nearest(session, tenant, lat, lng, 10, limit, "tire-fitting", attrs)
            assert [i for _, i in got] == [i for _, i in expected][:limit], attrs

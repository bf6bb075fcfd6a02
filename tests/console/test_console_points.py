"""The console's service points over HTTP: the tile-less map, a point's hours, services and
week of bookings, and booking a slot for an order (roles, CSRF, a full slot, another
merchant's point). On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import h3
import pytest
from console_support import form_token
from sqlalchemy import text

from haina.core.db import transaction

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def point(client, shop) -> dict:
    r = client.post("/v1/service-points", json={
        "name": "Xuhui tire bay", "address": "Xuhui, Shanghai",
        "location": {"lat": 31.19, "lng": 121.43},
        "opening_hours": [{"weekday": d, "open": "09:00", "close": "18:00"} for d in range(1, 8)],
        "exceptions": [{"date": "2027-02-06"}],
        "services": [{"code": "tire-fitting", "name": "Tire fitting", "duration_minutes": 60,
                      "capacity": 1, "price": {"amount": "80.00", "currency": "CNY"}}]})
    assert r.status_code == 201, r.text
    other = client.post("/v1/service-points", json={
        "name": "Pudong bay", "location": {"lat": 31.22, "lng": 121.54},
        "services": [{"code": "tire-fitting", "duration_minutes": 30,
                      "price": {"amount": "60.00", "currency": "CNY"}}]})
    assert other.status_code == 201, other.text
    return r.json()


def test_staff_book_a_slot_for_an_order_from_the_point_page(browser_as, shop, point, sessions):
    staff = browser_as("staff")
    order_id = shop["order"]["id"]
    order = staff.get(f"/console/orders/{order_id}").text
    assert "No service booked." in order
    assert f'href="/console/service-points?order={order_id}"' in order
    listing = staff.get("/console/service-points", params={"order": order_id}).text
    cells = {h3.latlng_to_cell(lat, lng, 5) for lat, lng in ((31.19, 121.43), (31.22, 121.54))}
    assert listing.count('<polygon class="hex') == len(cells)  # each point's ~8 km cell
    assert listing.count('<circle class="pin"') == 2 and "Pudong bay" in listing
    assert f'/console/service-points/{point["id"]}?order={order_id}' in listing
    day = (dt.datetime.now(SHANGHAI) + dt.timedelta(days=2)).date()
    page = staff.get(f"/console/service-points/{point['id']}",
                     params={"order": order_id, "service": "tire-fitting",
                             "date": day.isoformat()}).text
    assert "Tire fitting" in page and "09:00–18:00" in page and "2027-02-06" in page
    starts = re.findall(r'name="start" value="([^"]+)"', page)
    assert len(starts) == 9 and starts[0].endswith("T09:00:00+08:00")
    r = staff.post(f"/console/service-points/{point['id']}/bookings", follow_redirects=False,
                   data={"csrf_token": form_token(page), "order_id": order_id,
                         "service": "tire-fitting", "start": starts[1], "note": "winter set"})
    assert r.status_code == 303, r.text
    booked = re.search(r"booked=([^&]+)", r.headers["location"]).group(1)
    week = staff.get(r.headers["location"]).text
    assert f"Booking {booked} is confirmed." in week
    assert f'id="{booked}"' in week and "10:00–11:00" in week and f">{order_id}</a>" in week
    with transaction(sessions) as s:
        row = s.execute(text("SELECT status, order_id, member_id, note FROM bookings "
                             "WHERE id = :b"), {"b": booked}).one()
    assert tuple(row) == ("confirmed", order_id, shop["member"]["id"], "winter set")
    order = staff.get(f"/console/orders/{order_id}").text
    assert "Xuhui tire bay" in order and "confirmed" in order
    again = staff.get(f"/console/service-points/{point['id']}",
                      params={"order": order_id, "date": day.isoformat()}).text
    assert f'value="{starts[1]}"' not in again  # the one bay of 10:00 is taken
    full = staff.post(f"/console/service-points/{point['id']}/bookings",
                      data={"csrf_token": form_token(page), "order_id": order_id,
                            "service": "tire-fitting", "start": starts[1]})
    assert full.status_code == 409 and "This could not be done" in full.text
    odd = staff.post(f"/console/service-points/{point['id']}/bookings",
                     data={"csrf_token": form_token(page), "order_id": order_id,
                           "service": "tire-fitting", "start": starts[1][:-6]})
    assert odd.status_code == 422  # a time without its offset is not a slot
    with transaction(sessions) as s:
        assert s.execute(text("SELECT count(*) FROM bookings")).scalar() == 1


def test_read_only_accounts_cannot_book_and_other_merchants_points_are_not_found(
        browser_as, shop, point, sessions, app):
    from fastapi.testclient import TestClient
    from support import make_tenant
    viewer = browser_as("read-only")
    page = viewer.get(f"/console/service-points/{point['id']}").text
    assert "can look but not change" in page and 'name="start"' not in page
    day = (dt.datetime.now(SHANGHAI) + dt.timedelta(days=3)).date()
    start = dt.datetime.combine(day, dt.time(9), SHANGHAI).isoformat()
    form = {"order_id": shop["order"]["id"], "service": "tire-fitting", "start": start}
    r = viewer.post(f"/console/service-points/{point['id']}/bookings",
                    data={**form, "csrf_token": form_token(page)})
    assert r.status_code == 403 and "read-only" in r.text
    owner = browser_as("owner")
    r = owner.post(f"/console/service-points/{point['id']}/bookings",
                   data={**form, "csrf_token": "forged"})
    assert r.status_code == 403
    _, token = make_tenant(sessions, "globex")
    with TestClient(app) as other:
        other.headers["Authorization"] = f"Bearer {token}"
        theirs = other.post("/v1/service-points", json={
            "name": "Globex bay", "location": {"lat": 30.27, "lng": 120.15},
            "services": [{"code": "tire-fitting", "duration_minutes": 30,
                          "price": {"amount": "60.00", "currency": "CNY"}}]}).json()["id"]
    r = owner.get(f"/console/service-points/{theirs}")
    assert r.status_code == 404 and "Globex" not in r.text
    r = owner.get(f"/console/service-points/{theirs}", params={"ratings": "rtg_" + "0" * 26})
    assert r.status_code == 404 and "Globex" not in r.text  # nor its ratings
    assert "Globex" not in owner.get("/console/service-points").text
    r = owner.post(f"/console/service-points/{theirs}/bookings",
                   data={**form, "csrf_token": form_token(page := owner.get("/console").text)})
    assert r.status_code == 404
    with transaction(sessions) as s:
        assert s.execute(text("SELECT count(*) FROM bookings")).scalar() == 0
    # partnerships (installations sold with another merchant) are listed under the map
    assert 'id="partnerships"' not in owner.get("/console/service-points").text
    from haina.o2o import service as o2o
    from haina.o2o.schemas import PartnershipInvite
    from haina.platform import service as platform
    with transaction(sessions) as s:
        o2o.invite_partner(s, platform.tenant_for_slug(s, "acme"),
                           PartnershipInvite(installer="globex"))
    listed = owner.get("/console/service-points").text.split('id="partnerships"')[1]
    assert "globex" in listed and "the brand" in listed and "invited" in listed


def _rated_booking(client, point_id: str, member_id: str, hour: int, score: int,
                   comment: str) -> dict:
    """A booking of ``member_id`` at ``point_id`` six days ahead, done and rated."""
    day = (dt.datetime.now(SHANGHAI) + dt.timedelta(days=6)).date()
    b = client.post("/v1/bookings", json={
        "service_point_id": point_id, "service": "tire-fitting", "member_id": member_id,
        "start": dt.datetime.combine(day, dt.time(hour), SHANGHAI).isoformat()})
    assert b.status_code == 201, b.text
    for step in ("check-in", "complete"):
        assert client.post(f"/v1/bookings/{b.json()['id']}/{step}").status_code == 200
    r = client.post(f"/v1/bookings/{b.json()['id']}/rating",
                    json={"member_id": member_id, "score": score, "comment": comment})
    assert r.status_code == 201, r.text
    return {**b.json(), "rated": r.json()}


def test_a_points_page_shows_its_rating_and_latest_ratings(browser_as, client, shop, point,
                                                           monkeypatch):
    member = shop["member"]["id"]
    first = _rated_booking(client, point["id"], member, 10, 5, "Quick and clean")
    second = _rated_booking(client, point["id"], member, 11, 4, "慢了一点 a bit slow")
    viewer = browser_as("read-only")
    page = viewer.get(f"/console/service-points/{point['id']}").text
    ratings = page.split('id="ratings"')[1].split("</section>")[0]
    assert "4.5 of 5" in ratings and "<dd>2</dd>" in ratings  # the average and the count
    assert "Quick and clean" in ratings and "慢了一点 a bit slow" in ratings
    # newest first, the score as stars with a text alternative
    assert ratings.index("慢了一点") < ratings.index("Quick and clean")
    assert 'role="img" aria-label="4 of 5 stars">★★★★☆<' in ratings
    assert 'aria-label="5 of 5 stars">★★★★★<' in ratings
    assert "Older ratings" not in ratings and "No ratings yet" not in ratings
    # the week of the jobs shows each one's stars beside its state
    week = viewer.get(f"/console/service-points/{point['id']}",
                      params={"week": first["start"][:10]}).text.split('id="calendar"')[1]
    assert f'id="{first["id"]}"' in week and 'aria-label="5 of 5 stars"' in week
    # a page of one: the older rating behind a link that keeps the page's other choices
    import haina.console.points as points_page
    monkeypatch.setattr(points_page, "RATINGS_SHOWN", 1)
    page = viewer.get(f"/console/service-points/{point['id']}",
                      params={"service": "tire-fitting"}).text
    ratings = page.split('id="ratings"')[1].split("</section>")[0]
    assert "慢了一点" in ratings and "Quick and clean" not in ratings
    older = re.search(r'<a href="([^"]+)">Older ratings', ratings).group(1).replace("&amp;", "&")
    assert f"ratings={second['rated']['id']}" in older and "service=tire-fitting" in older
    rest = viewer.get(older).text.split('id="ratings"')[1].split("</section>")[0]
    assert "Quick and clean" in rest and "慢了一点" not in rest
    assert viewer.get(f"/console/service-points/{point['id']}",
                      params={"ratings": "nonsense"}).status_code == 422
    # a point without ratings says so
    other = next(p for p in client.get("/v1/service-points").json()["data"]
                 if p["name"] == "Pudong bay")
    empty = viewer.get(f"/console/service-points/{other['id']}").text
    assert "No ratings yet" in empty.split('id="ratings"')[1].split("</section>")[0]
    assert "Quick and clean" not in empty
    zh = viewer.get(f"/console/service-points/{point['id']}", params={"lang": "zh"}).text
    assert "4.5 分（满分 5 分）" in zh and "最近的评价" in zh and "4 星（满分 5 星）" in zh
    assert "暂无评价" in viewer.get(f"/console/service-points/{other['id']}").text

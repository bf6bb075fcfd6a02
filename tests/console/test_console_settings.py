"""The console's settings page over HTTP: the shop's time zone (Asia/Shanghai by default for a
CNY shop) changed by an owner, used for the dashboard's weeks and the dates shown; a name that
is no IANA zone refused; staff and read-only accounts cannot change it. On SQLite and
PostgreSQL."""

from __future__ import annotations

from console_support import form_token
from sqlalchemy import text

from haina.core.db import transaction


def test_an_owner_sets_the_shops_time_zone_and_the_dashboard_uses_it(browser_as, shop,
                                                                    sessions, client):
    owner = browser_as("owner")
    page = owner.get("/console/settings").text
    assert "<code>Asia/Shanghai</code> · the default" in page
    assert "Monday to Sunday in the shop's time zone (Asia/Shanghai)" in owner.get(
        "/console").text
    token = form_token(page)
    for bad in ("Mars/Olympus", "Asia", "../etc/passwd"):
        r = owner.post("/console/settings/time-zone", data={"csrf_token": token,
                                                            "time_zone": bad})
        assert r.status_code == 422 and "is not an IANA time zone" in r.text, bad
    r = owner.post("/console/settings/time-zone", follow_redirects=False,
                   data={"csrf_token": token, "time_zone": "Europe/Paris"})
    assert r.status_code == 303
    page = owner.get(r.headers["location"]).text
    assert "Settings saved: Europe/Paris." in page and 'value="Europe/Paris"' in page
    assert "(Europe/Paris)" in owner.get("/console").text
    assert client.get("/v1/tenant").json()["settings"]["time_zone"] == "Europe/Paris"
    with transaction(sessions) as s:  # the other settings are kept
        assert s.execute(text("SELECT count(*) FROM events WHERE type = 'tenant.updated'")) \
            .scalar_one() == 1
    zh = owner.get("/console/settings", params={"lang": "zh"}).text
    assert "时区" in zh
    owner.get("/console/settings", params={"lang": "en"})
    for role in ("staff", "read-only"):
        other = browser_as(role)
        page = other.get("/console/settings").text
        assert "Europe/Paris" in page and "/console/settings/time-zone" not in page
        r = other.post("/console/settings/time-zone",
                       data={"csrf_token": form_token(page), "time_zone": "UTC"})
        assert r.status_code == 403, role
    r = owner.post("/console/settings/time-zone", follow_redirects=False,
                   data={"csrf_token": token, "time_zone": ""})  # back to the default
    assert "Settings saved: Asia/Shanghai." in owner.get(r.headers["location"]).text
    assert client.get("/v1/tenant").json()["settings"]["time_zone"] is None

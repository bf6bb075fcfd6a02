"""The console's promotions over HTTP: the common kinds created from the form (满减 with
repeat, percent, free shipping from an amount), a wrong one explained with what was typed,
pause and resume, an edit of name, last day, budget and priority (a wrong one shown with what
was typed), and read-only accounts refused. On SQLite and PostgreSQL."""

from __future__ import annotations

from console_support import form_token
from sqlalchemy import text

from haina.core.db import transaction


def _threshold(**extra: str) -> dict[str, str]:
    return {"name": "满300减40", "kind": "threshold", "tier1_min": "300", "tier1_off": "40",
            "tier2_min": "600", "tier2_off": "100", "repeat": "on", "max_discount": "500",
            "budget": "5000", "ends_on": "2030-12-31", "priority": "5", **extra}


def test_staff_create_pause_and_resume_promotions(browser_as, shop, sessions, client):
    staff = browser_as("staff")
    page = staff.get("/console/promotions").text
    assert 'action="/console/promotions"' in page and "buy X get Y, bundle" in page
    token = form_token(page)
    r = staff.post("/console/promotions", data={**_threshold(), "csrf_token": token},
                   follow_redirects=False)
    assert r.status_code == 303 and "promoted=" in r.headers["location"], r.text
    listed = staff.get(r.headers["location"]).text
    assert "Promotion 满300减40 created." in listed and "from 300.00, 40.00 off" in listed
    assert "repeats" in listed and "CN¥0.00 / CN¥5,000.00" in listed
    for form in ({"name": "Winter 10%", "kind": "percent", "percent": "10"},
                 {"name": "Free shipping from 199", "kind": "free_shipping",
                  "min_subtotal": "199", "percent": "ignored: not this kind's"}):
        r = staff.post("/console/promotions", data={**form, "csrf_token": token},
                       follow_redirects=False)
        assert r.status_code == 303, r.text
    bad = staff.post("/console/promotions", data={"name": "Half off", "kind": "percent",
                                                  "csrf_token": token})
    assert bad.status_code == 422 and "The promotion was not created" in bad.text
    assert "needs percent" in bad.text and 'value="Half off"' in bad.text
    with transaction(sessions) as s:
        rows = dict(s.execute(text("SELECT name, kind FROM promotions")).all())
    assert rows == {"满300减40": "threshold", "Winter 10%": "percent",
                    "Free shipping from 199": "free_shipping"}
    with transaction(sessions) as s:
        pid = s.execute(text("SELECT id FROM promotions WHERE kind = 'threshold'")).scalar_one()
    r = staff.post(f"/console/promotions/{pid}/status",
                   data={"csrf_token": token, "status": "paused"}, follow_redirects=False)
    assert r.status_code == 303
    page = staff.get(r.headers["location"]).text
    assert "满300减40 is paused" in page and 'aria-label="Resume 满300减40"' in page
    with transaction(sessions) as s:
        assert s.execute(text("SELECT status FROM promotions WHERE id = :p"),
                         {"p": pid}).scalar_one() == "paused"
    r = staff.post(f"/console/promotions/{pid}/status",
                   data={"csrf_token": token, "status": "active"}, follow_redirects=False)
    assert "满300减40 runs again" in staff.get(r.headers["location"]).text
    form = staff.get(f"/console/promotions/{pid}/edit").text
    assert 'value="2030-12-31"' in form and 'value="5000.00"' in form and 'value="5"' in form
    edit = {"csrf_token": token, "name": "满300减40 (春)", "ends_on": "2031-06-30",
            "budget": "8000", "priority": "9", "description": "spring"}
    r = staff.post(f"/console/promotions/{pid}", data=edit, follow_redirects=False)
    assert r.status_code == 303
    assert "满300减40 (春) is saved." in staff.get(r.headers["location"]).text
    for bad, why in (({"name": ""}, "name"), ({"budget": "lots"}, "budget"),
                     ({"priority": "5000"}, "priority")):
        r = staff.post(f"/console/promotions/{pid}", data={**edit, **bad})
        assert r.status_code == 422 and "Nothing was saved" in r.text and why in r.text, bad
        assert 'value="spring"' in r.text  # what was typed comes back
    with transaction(sessions) as s:
        row = s.execute(text("SELECT name, ends_at, budget_minor, priority, description "
                             "FROM promotions WHERE id = :p"), {"p": pid}).one()
    assert (row[0], row[2], row[3], row[4]) == ("满300减40 (春)", 800_000, 9, "spring")
    assert "2031-06-30 15:59:59" in str(row[1])  # the last second of the day in Shanghai


def test_read_only_accounts_cannot_create_or_pause_promotions(browser_as, shop, sessions, client):
    r = client.post("/v1/promotions", json={"name": "Free shipping", "kind": "free_shipping"})
    assert r.status_code == 201, r.text
    viewer = browser_as("read-only")
    page = viewer.get("/console/promotions").text
    assert 'action="/console/promotions"' not in page and "/status" not in page
    assert "can look but not change" in page
    token = form_token(page)
    assert "/edit" not in page
    for path, data in (("/console/promotions", _threshold()),
                       (f"/console/promotions/{r.json()['id']}/status", {"status": "paused"}),
                       (f"/console/promotions/{r.json()['id']}", {"name": "Mine"})):
        refused = viewer.post(path, data={**data, "csrf_token": token})
        assert refused.status_code == 403 and "read-only" in refused.text
    with transaction(sessions) as s:
        assert s.execute(text("SELECT name, status FROM promotions")).all() == [
            ("Free shipping", "active")]

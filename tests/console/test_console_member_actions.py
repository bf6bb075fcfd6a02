"""The console's member actions over HTTP: staff change a profile and adjust points with a
reason (a bad value and taking more than the balance refused, nothing changed); read-only
accounts see no form and are refused. On SQLite and PostgreSQL."""

from __future__ import annotations

from console_support import form_token
from sqlalchemy import text

from haina.core.db import transaction


def test_staff_change_a_profile_and_adjust_points(browser_as, shop, sessions):
    member = shop["member"]["id"]
    staff = browser_as("staff")
    page = staff.get(f"/console/members/{member}").text
    assert 'value="li.lei@example.com"' in page
    token = form_token(page)
    r = staff.post(f"/console/members/{member}/profile", follow_redirects=False,
                   data={"csrf_token": token, "name": "Li Lei 李雷", "email": "lei@example.com",
                         "phone": ""})
    assert r.status_code == 303, r.text
    page = staff.get(r.headers["location"]).text
    assert f"The profile of {member} is saved." in page and "Li Lei 李雷" in page
    r = staff.post(f"/console/members/{member}/points", follow_redirects=False,
                   data={"csrf_token": token, "points": "-100", "reason": "goodwill undone"})
    assert r.status_code == 303
    assert "Points adjusted: -100." in staff.get(r.headers["location"]).text
    for bad in ({"points": "-1000000", "reason": "too many"}, {"points": "x", "reason": "?"},
                {"points": "5", "reason": ""}):
        r = staff.post(f"/console/members/{member}/points", data={"csrf_token": token, **bad})
        assert r.status_code == 422, bad
    bad = staff.post(f"/console/members/{member}/profile",
                     data={"csrf_token": token, "name": "Li", "email": "x" * 400})
    assert bad.status_code == 422
    with transaction(sessions) as s:
        row = s.execute(text("SELECT name, email, phone FROM members WHERE id = :m"),
                        {"m": member}).one()
        adjusted = s.execute(text("SELECT points FROM points_entries WHERE member_id = :m "
                                  "AND kind = 'adjust'"), {"m": member}).scalars().all()
    assert tuple(row) == ("Li Lei 李雷", "lei@example.com", None) and adjusted == [-100]
    viewer = browser_as("read-only")
    page = viewer.get(f"/console/members/{member}").text
    assert "/points\"" not in page and "/profile\"" not in page
    r = viewer.post(f"/console/members/{member}/points",
                    data={"csrf_token": form_token(page), "points": "5", "reason": "x"})
    assert r.status_code == 403

"""The console's member actions over HTTP: staff change a profile and adjust points with a
reason (a double submit of the points form adjusts once: its one-time nonce; a bad value and
taking more than the balance refused, nothing changed, the nonce still usable); read-only
accounts see no form and are refused. On SQLite and PostgreSQL."""

from __future__ import annotations

import re

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
    nonce = re.search(r'name="form_nonce" value="([^"]+)"', page).group(1)
    sent = {"csrf_token": token, "form_nonce": nonce, "points": "-100",
            "reason": "goodwill undone"}
    for _twice in range(2):  # a double submit adjusts once and answers alike
        r = staff.post(f"/console/members/{member}/points", follow_redirects=False, data=sent)
        assert r.status_code == 303
        assert "Points adjusted: -100." in staff.get(r.headers["location"]).text
    r = staff.post(f"/console/members/{member}/points", data={**sent, "points": "-5"})
    assert r.status_code == 422  # the nonce is spent on another adjustment
    fresh = re.search(r'name="form_nonce" value="([^"]+)"',
                      staff.get(f"/console/members/{member}").text).group(1)
    assert fresh != nonce
    for bad in ({"points": "-1000000", "reason": "too many"}, {"points": "x", "reason": "?"},
                {"points": "5", "reason": ""}, {"points": "5", "reason": "x", "form_nonce": ""}):
        r = staff.post(f"/console/members/{member}/points",
                       data={"csrf_token": token, "form_nonce": fresh, **bad})
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


def test_a_refused_adjustment_leaves_its_nonce_usable(browser_as, shop, sessions):
    member = shop["member"]["id"]
    staff = browser_as("staff")
    page = staff.get(f"/console/members/{member}").text
    sent = {"csrf_token": form_token(page), "reason": "fix",
            "form_nonce": re.search(r'name="form_nonce" value="([^"]+)"', page).group(1)}
    too_many = staff.post(f"/console/members/{member}/points", data={**sent, "points": "-9999"})
    assert too_many.status_code == 422 and "9999 asked" in too_many.text
    r = staff.post(f"/console/members/{member}/points", data={**sent, "points": "-9"},
                   follow_redirects=False)
    assert r.status_code == 303
    with transaction(sessions) as s:
        assert s.execute(text("SELECT points FROM points_entries WHERE member_id = :m "
                              "AND kind = 'adjust'"), {"m": member}).scalars().all() == [-9]

"""The console's personal-information requests over HTTP: an owner exports a member's data
after a confirmation page and downloads the archive (counted), erases a member only after
ticking that it cannot be undone, the apps' acknowledgements with an overdue one marked, the
list filtered by kind and overdue;
staff and read-only accounts refused. On SQLite and PostgreSQL."""

from __future__ import annotations

import io
import re
import zipfile

from console_support import form_token
from sqlalchemy import text

from haina.core.db import transaction


def test_an_owner_exports_a_members_data_and_downloads_the_archive(browser_as, shop, sessions):
    from support import app_token
    app_token(sessions, "acme", "members:read")  # an app holding members' data: it is told
    member = shop["member"]["id"]
    owner = browser_as("owner")
    page = owner.get(f"/console/members/{member}").text
    assert "No export or erasure requested." in page
    assert f"/console/members/{member}/data-requests/new?kind=export" in page
    confirm = owner.get(f"/console/members/{member}/data-requests/new",
                        params={"kind": "export"}).text
    assert "Export Li Lei" in confirm and "personal information?" in confirm
    assert "Export now" in confirm
    r = owner.post(f"/console/members/{member}/data-requests", follow_redirects=False,
                   data={"csrf_token": form_token(confirm), "kind": "export"})
    assert r.status_code == 303, r.text
    request_id = re.search(r"/console/data-requests/([^?]+)\?", r.headers["location"]).group(1)
    done = owner.get(r.headers["location"]).text
    assert f"Request {request_id} is done" in done and "Download the archive (zip)" in done
    assert "An app" in done and "pending" in done and "orders" in done
    archive = owner.post(f"/console/data-requests/{request_id}/archive",
                         data={"csrf_token": form_token(done)})
    assert archive.status_code == 200 and archive.headers["content-type"] == "application/zip"
    assert "attachment" in archive.headers["content-disposition"]
    names = zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
    assert "data.json" in names
    with transaction(sessions) as s:
        assert s.execute(text("SELECT downloads FROM data_requests WHERE id = :r"),
                         {"r": request_id}).scalar_one() == 1
        s.execute(text("UPDATE data_request_acks SET due_at = :past"),
                  {"past": "2020-01-01 00:00:00"})
    listing = owner.get("/console/data-requests").text
    assert request_id in listing and "0 of 1 acknowledged" in listing and "1 overdue" in listing
    assert "1 overdue" in owner.get(f"/console/members/{member}").text
    r = owner.post(f"/console/members/{member}/data-requests", follow_redirects=False,
                   data={"csrf_token": form_token(done), "kind": "export"})
    second = re.search(r"/console/data-requests/([^?]+)\?", r.headers["location"]).group(1)
    both = owner.get("/console/data-requests", params={"kind": "export"}).text
    assert request_id in both and second in both
    late = owner.get("/console/data-requests", params={"overdue": "1"}).text
    assert request_id in late and second not in late and 'value="1" checked' in late
    none = owner.get("/console/data-requests", params={"kind": "erase", "overdue": "1"}).text
    assert "No request matches." in none and request_id not in none


def test_an_erasure_needs_its_confirmation_and_only_owners_start_one(browser_as, shop, sessions):
    member = shop["member"]["id"]
    staff = browser_as("staff")
    page = staff.get(f"/console/members/{member}").text
    assert "data-requests/new" not in page
    r = staff.post(f"/console/members/{member}/data-requests",
                   data={"csrf_token": form_token(page), "kind": "export"})
    assert r.status_code == 403
    owner = browser_as("owner")
    confirm = owner.get(f"/console/members/{member}/data-requests/new",
                        params={"kind": "erase"}).text
    assert "This cannot be undone." in confirm and 'name="understood" required' in confirm
    token = form_token(confirm)
    r = owner.post(f"/console/members/{member}/data-requests",
                   data={"csrf_token": token, "kind": "erase"})
    assert r.status_code == 422 and "cannot be undone" in r.text
    with transaction(sessions) as s:
        assert s.execute(text("SELECT count(*) FROM data_requests")).scalar() == 0
    r = owner.post(f"/console/members/{member}/data-requests", follow_redirects=False,
                   data={"csrf_token": token, "kind": "erase", "understood": "on"})
    assert r.status_code == 303, r.text
    assert "no app to tell" in owner.get("/console/data-requests").text
    assert "Li Lei" not in owner.get(f"/console/members/{member}").text
    with transaction(sessions) as s:
        assert s.execute(text("SELECT name FROM members WHERE id = :m"),
                         {"m": member}).scalar_one() != "Li Lei"

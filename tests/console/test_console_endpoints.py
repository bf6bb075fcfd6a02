"""The console's webhook endpoints over HTTP: an owner adds one (its secret shown once, on
the answering page), rotates its secret with a grace period, disables and enables it; a bad
address is refused; staff cannot. On SQLite and PostgreSQL."""

from __future__ import annotations

import re

from console_support import form_token
from sqlalchemy import text

from haina.core.db import transaction


def test_an_owner_adds_rotates_disables_and_enables_an_endpoint(browser_as, shop, sessions):
    owner = browser_as("owner")
    page = owner.get("/console/webhooks").text
    token = form_token(page)
    r = owner.post("/console/webhooks/endpoints", data={
        "csrf_token": token, "url": "https://hooks.example.com/haina",
        "event_types": "order.paid, order.cancelled", "description": "ERP"})
    assert r.status_code == 200 and "Endpoint added" in r.text, r.text[:2000]
    first = re.search(r'<code id="secret">(whsec_[^<]+)</code>', r.text).group(1)
    assert r.headers["cache-control"] == "no-store"
    with transaction(sessions) as s:
        endpoint, secret, types = s.execute(text(
            "SELECT id, secret, event_types FROM webhook_endpoints")).one()
    assert secret == first and "order.cancelled" in str(types)
    page = owner.get("/console/webhooks").text
    assert "https://hooks.example.com/haina" in page and first not in page  # shown once
    r = owner.post(f"/console/webhooks/endpoints/{endpoint}/rotate",
                   data={"csrf_token": token, "grace_hours": "24"})
    assert r.status_code == 200 and "Secret rotated" in r.text
    second = re.search(r'<code id="secret">(whsec_[^<]+)</code>', r.text).group(1)
    assert second != first and "The old secret signs too until" in r.text
    r = owner.post(f"/console/webhooks/endpoints/{endpoint}/state",
                   data={"csrf_token": token, "disabled": "true"}, follow_redirects=False)
    assert r.status_code == 303
    assert "is disabled: nothing is sent to it." in owner.get(r.headers["location"]).text
    with transaction(sessions) as s:
        assert s.execute(text("SELECT disabled FROM webhook_endpoints")).scalar_one()
    r = owner.post(f"/console/webhooks/endpoints/{endpoint}/state",
                   data={"csrf_token": token, "disabled": "false"}, follow_redirects=False)
    assert "is enabled again." in owner.get(r.headers["location"]).text
    bad = owner.post("/console/webhooks/endpoints", data={
        "csrf_token": token, "url": "ftp://hooks.example.com", "event_types": "order.*"})
    assert bad.status_code == 422 and "This could not be done" in bad.text
    r = owner.post(f"/console/webhooks/endpoints/{endpoint}/rotate",
                   data={"csrf_token": token, "grace_hours": "500"})
    assert r.status_code == 422
    staff = browser_as("staff")
    page = staff.get("/console/webhooks").text
    assert "/console/webhooks/endpoints" not in page
    for path in ("/console/webhooks/endpoints", f"/console/webhooks/endpoints/{endpoint}/rotate",
                 f"/console/webhooks/endpoints/{endpoint}/state"):
        r = staff.post(path, data={"csrf_token": form_token(page), "disabled": "true",
                                   "url": "https://x.example.com", "event_types": "*"})
        assert r.status_code == 403, path
    with transaction(sessions) as s:
        assert s.execute(text("SELECT count(*), max(secret) FROM webhook_endpoints")).one() \
            == (1, second)

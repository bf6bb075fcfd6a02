"""The console's campaign pages: staff create a campaign from a saved segment and read its
results (lift, interval, chart); a read-only account is refused the create; zh-CN."""

from __future__ import annotations

import datetime as dt

from console_support import form_token
from sqlalchemy import text

from haina.core.db import transaction


def _segment(client, sessions, member_id: str) -> dict:
    """A saved segment with the shop's member in it (scores written as a refresh would)."""
    from haina.analytics.models import MemberScore
    from haina.platform import service as platform
    r = client.put(f"/v1/members/{member_id}/consents", json={"sms_marketing": True})
    assert r.status_code == 200, r.text
    seg = client.post("/v1/analytics/segments", json={"name": "slipping high-value",
                                                       "rule": {"p_alive_lt": 0.3}})
    assert seg.status_code == 201, seg.text
    with transaction(sessions) as s:
        tenant = platform.tenant_for_slug(s, "acme")
        s.add(MemberScore(tenant_id=tenant.id, member_id=member_id, run_id="run_x", frequency=1,
                          recency=5.0, age=90.0, monetary_minor=90000, p_alive=0.1,
                          expected_purchases_90d=0.1, clv_minor=50000, r_score=1, f_score=1,
                          m_score=5, segment="at_risk", stage="at_risk",
                          computed_at=dt.datetime.now(dt.UTC)))
    return seg.json()


def _form(segment_id: str, **fields: str) -> dict[str, str]:
    last = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    return {"name": "Win back", "segment_id": segment_id, "channel": "sms", "kind": "fixed",
            "amount": "30.00", "holdout_percent": "0", "ends_on": last, **fields}


def test_staff_create_a_campaign_from_a_segment_and_read_its_results(browser_as, shop, client,
                                                                     sessions):
    seg = _segment(client, sessions, shop["member"]["id"])
    staff = browser_as("staff")
    page = staff.get("/console/campaigns")
    assert page.status_code == 200 and "slipping high-value (1)" in page.text
    assert 'href="/console/campaigns"' in page.text  # in the navigation
    token = form_token(page.text)
    bad = staff.post("/console/campaigns", data={**_form(seg["id"], amount=""),
                                                 "csrf_token": token})
    assert bad.status_code == 422 and "The campaign was not created" in bad.text
    assert 'value="Win back"' in bad.text  # the form keeps what was typed
    r = staff.post("/console/campaigns", data={**_form(seg["id"]), "csrf_token": token},
                   follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/console/campaigns/cmp_")
    result = staff.get(r.headers["location"])
    assert result.status_code == 200 and "Campaign Win back created." in result.text
    for words in ("Incremental revenue", "Net lift", "Revenue per member",
                  "consent:sms_marketing"):
        assert words in result.text, words
    campaign_id = r.headers["location"].split("/")[-1].split("?")[0]
    chart = staff.get(f"/console/campaigns/{campaign_id}/lift.svg")
    assert chart.status_code == 200 and chart.headers["content-type"] == "image/svg+xml"
    assert staff.get("/console/campaigns/cmp_nope/lift.svg").status_code == 404
    daily = staff.get(f"/console/campaigns/{campaign_id}/daily.svg")  # the lift day by day
    assert daily.status_code == 200 and b"<svg" in daily.content[:400]
    assert f"/console/campaigns/{campaign_id}/daily.svg" in result.text
    assert staff.get("/console/campaigns/cmp_nope/daily.svg").status_code == 404
    assert staff.get("/console/campaigns/cmp_nope").status_code == 404
    listed = staff.get("/console/campaigns?lang=zh").text
    assert "营销活动" in listed and "进行中" in listed and "Win back" in listed
    wallet = client.get(f"/v1/members/{shop['member']['id']}/coupons").json()["data"]
    assert [e["source"] for e in wallet] == [campaign_id]
    # the enrolment: the launch walked the audience of one in the request
    assert 'id="enrolment-status">done</span> launch' in result.text, result.text[-4000:]
    assert '<progress id="enrolment-progress" max="100" value="100">' in result.text
    assert "1 of 1 members walked" in result.text and "enrolled 1 treated" in result.text
    r = staff.post(f"/console/campaigns/{campaign_id}/reevaluate",
                   data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = staff.get(r.headers["location"] + "&lang=en").text  # (zh since the list above)
    assert "A look for new members of Win back is queued" in page
    assert 'id="enrolment-status">queued</span> re-evaluation' in page
    from haina.campaigns.enrolment import run_queued_jobs
    with transaction(sessions) as s:
        assert run_queued_jobs(s) == 1
    page = staff.get(f"/console/campaigns/{campaign_id}").text
    assert 'id="enrolment-status">done</span> re-evaluation' in page
    assert 'value="100"' in page and "Failed batches" in page
    zh = staff.get(f"/console/campaigns/{campaign_id}", params={"lang": "zh"}).text
    assert "立即重新评估" in zh and "已完成" in zh and "重新评估" in zh


def test_a_read_only_account_cannot_create_a_campaign(browser_as, shop, client, sessions):
    seg = _segment(client, sessions, shop["member"]["id"])
    viewer = browser_as("read-only")
    page = viewer.get("/console/campaigns").text
    assert 'action="/console/campaigns"' not in page and "can look but not change" in page
    r = viewer.post("/console/campaigns", data={**_form(seg["id"]),
                                                "csrf_token": form_token(page)})
    assert r.status_code == 403 and "read-only" in r.text
    with transaction(sessions) as s:
        assert s.execute(text("SELECT count(*) FROM campaigns")).scalar() == 0
    # a campaign made through the API: the read-only account sees its enrolment, no button
    made = client.post("/v1/campaigns", json={
        "name": "API made", "segment_id": seg["id"],
        "ends_at": (dt.datetime.now(dt.UTC) + dt.timedelta(days=9)).isoformat(),
        "coupon": {"discount": {"type": "fixed", "amount": {"amount": "5.00",
                                                            "currency": "CNY"}}}})
    assert made.status_code == 201, made.text
    page = viewer.get(f"/console/campaigns/{made.json()['id']}").text
    assert "enrolment-progress" in page and "Re-evaluate now" not in page
    r = viewer.post(f"/console/campaigns/{made.json()['id']}/reevaluate",
                    data={"csrf_token": form_token(page)})
    assert r.status_code == 403 and "read-only" in r.text
    with transaction(sessions) as s:
        assert s.execute(text("SELECT count(*) FROM campaign_jobs")).scalar() == 1

"""Members through the API: profiles, identities, search, consents, scopes and tenancy."""

from __future__ import annotations

from haina.core.db import transaction
from haina.platform import service as platform

ANN = {"name": "Ann Lee", "email": "Ann@Example.com", "phone": "+86 138-0000-0000",
       "identities": [{"kind": "wechat_openid", "value": "oAnn123", "channel": "mini-program"}]}


def new_member(client, **body):
    r = client.post("/v1/members", json=body or ANN)
    assert r.status_code == 201, r.text
    return r.json()


def test_a_member_is_found_by_each_of_its_channel_identities(client):
    ann = new_member(client)
    assert ann["id"].startswith("mem_")
    assert ann["email"] == "ann@example.com" and ann["phone"] == "+8613800000000"
    kinds = {(i["kind"], i["value"], i["channel"]) for i in ann["identities"]}
    assert kinds == {("email", "ann@example.com", "profile"), ("phone", "+8613800000000", "profile"),
                     ("wechat_openid", "oAnn123", "mini-program")}
    for identity in ("phone:+86 13800000000", "email:ANN@example.com", "wechat_openid:oAnn123"):
        r = client.get("/v1/members", params={"identity": identity})
        assert r.status_code == 200, r.text
        assert [m["id"] for m in r.json()["data"]] == [ann["id"]], identity
    assert client.get("/v1/members", params={"identity": "taobao:nobody"}).json()["data"] == []


def test_an_identity_held_by_another_member_is_a_409_naming_that_member(client):
    ann = new_member(client)
    bob = new_member(client, name="Bob", phone="13900000000")
    r = client.post(f"/v1/members/{bob['id']}/identities",
                    json={"kind": "wechat_openid", "value": "oAnn123", "channel": "store-12"})
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["type"] == "https://haina.dev/problems/identity-taken"
    assert body["member_id"] == ann["id"] and ann["id"] in body["detail"]
    # creating a member with a taken phone: the same problem
    r = client.post("/v1/members", json={"name": "Ann again", "phone": "+8613800000000"})
    assert r.status_code == 409 and r.json()["member_id"] == ann["id"]
    # adding one it already has is harmless; a fresh one is attached
    r = client.post(f"/v1/members/{bob['id']}/identities", json={"kind": "phone", "value": "13900000000"})
    assert r.status_code == 201 and r.json()["value"] == "13900000000"
    r = client.post(f"/v1/members/{bob['id']}/identities", json={"kind": "taobao", "value": "bob_tb"})
    assert r.status_code == 201 and r.json()["id"].startswith("mid_")
    assert len(client.get(f"/v1/members/{bob['id']}").json()["identities"]) == 2


def test_bad_emails_and_phones_are_rejected_with_a_clear_message(client):
    for body, words in (({"email": "not-an-email"}, "not a valid email address"),
                        ({"email": "a@b"}, "not a valid email address"),
                        ({"phone": "call me"}, "not a valid phone number"),
                        ({"phone": "123"}, "not a valid phone number"),
                        ({"identities": [{"kind": "email", "value": "x@"}]}, "not a valid email"),
                        ({"identities": [{"kind": "fax", "value": "1"}]}, "identities.0.kind"),
                        ({"nickname": "x"}, "nickname")):
        r = client.post("/v1/members", json=body)
        assert r.status_code == 422, body
        assert r.headers["content-type"] == "application/problem+json"
        assert words in r.json()["detail"], r.json()["detail"]
    r = client.get("/v1/members", params={"identity": "phone"})
    assert r.status_code == 422 and "kind:value" in r.json()["detail"]


def test_search_matches_a_prefix_of_name_email_or_phone(client):
    ann = new_member(client)
    bob = new_member(client, name="bob_smith", email="bob@shop.cn", phone="13912345678")
    new_member(client, name="Carol", email="carol@x.org")

    def ids(q):
        return {m["id"] for m in client.get("/v1/members", params={"q": q}).json()["data"]}

    assert ids("ann") == {ann["id"]}  # any case
    assert ids("BOB@") == {bob["id"]}
    assert ids("1391") == {bob["id"]}
    assert ids("+86138") == {ann["id"]}
    assert ids("bob_") == {bob["id"]} and ids("b%") == set()  # wildcards are literal
    assert len(ids("")) == 3


def test_members_list_pages_with_a_cursor(client):
    made = [new_member(client, name=f"m{i}")["id"] for i in range(5)]
    seen, cursor = [], None
    while True:
        page = client.get("/v1/members", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        seen += [m["id"] for m in page["data"]]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert seen == list(reversed(made))


def test_patching_phone_moves_its_identity_and_null_clears_email(client):
    ann = new_member(client)
    r = client.patch(f"/v1/members/{ann['id']}", json={"phone": "13700000000", "email": None,
                                                       "birthday": "1990-05-01"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["phone"] == "13700000000" and out["email"] is None and out["birthday"] == "1990-05-01"
    assert {(i["kind"], i["value"]) for i in out["identities"]} == {
        ("phone", "13700000000"), ("wechat_openid", "oAnn123")}
    assert client.get("/v1/members", params={"identity": "phone:13800000000"}).json()["data"] == []
    # another member may now take the old number
    assert client.post("/v1/members", json={"phone": "13800000000"}).status_code == 201
    assert client.patch(f"/v1/members/{ann['id']}", json={"phone": "13800000000"}).status_code == 409
    assert client.patch(f"/v1/members/{ann['id']}", json={"birthday": "2999-01-01"}).status_code == 422


def test_deleting_an_identity_detaches_it(client):
    ann = new_member(client)
    wechat = next(i for i in ann["identities"] if i["kind"] == "wechat_openid")
    assert client.delete(f"/v1/members/{ann['id']}/identities/{wechat['id']}").status_code == 204
    assert client.get("/v1/members", params={"identity": "wechat_openid:oAnn123"}).json()["data"] == []
    r = client.delete(f"/v1/members/{ann['id']}/identities/{wechat['id']}")
    assert r.status_code == 404 and r.json()["type"].endswith("/identity-not-found")


def test_consents_keep_the_time_each_flag_last_changed(client):
    ann = new_member(client, name="Ann", consents={"email_marketing": True})
    c = ann["consents"]
    assert c["email_marketing"]["granted"] is True and c["email_marketing"]["changed_at"]
    assert c["sms_marketing"] == {"granted": False, "changed_at": None}
    r = client.put(f"/v1/members/{ann['id']}/consents",
                   json={"email_marketing": True, "sms_marketing": True})
    after = r.json()["consents"]
    assert after["email_marketing"] == c["email_marketing"]  # unchanged value: same time
    assert after["sms_marketing"]["granted"] is True and after["sms_marketing"]["changed_at"]
    assert after["data_analysis"] == {"granted": False, "changed_at": None}
    assert client.put(f"/v1/members/{ann['id']}/consents", json={"sms": True}).status_code == 422


def test_a_read_scope_cannot_write_members(client, sessions):
    with transaction(sessions) as s:
        token = platform.create_token(s, "acme", "members:read").token
    read_only = {"Authorization": f"Bearer {token}"}
    ann = new_member(client)
    assert client.get(f"/v1/members/{ann['id']}", headers=read_only).status_code == 200
    r = client.post("/v1/members", json={"name": "x"}, headers=read_only)
    assert r.status_code == 403 and r.json()["required_scope"] == "members:write"
    assert client.post("/v1/tiers", json={"name": "Gold", "rank": 1,
                                          "min_spend": {"amount": "100.00", "currency": "CNY"}},
                       headers=read_only).status_code == 403


def test_creating_a_member_with_an_idempotency_key_replays_the_first_response(client):
    headers = {"Idempotency-Key": "create-ann-1"}
    first = client.post("/v1/members", json=ANN, headers=headers)
    again = client.post("/v1/members", json=ANN, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert len(client.get("/v1/members").json()["data"]) == 1


def test_member_changes_are_written_to_the_outbox(client):
    ann = new_member(client)
    client.patch(f"/v1/members/{ann['id']}", json={"name": "Ann Li"})
    client.put(f"/v1/members/{ann['id']}/consents", json={"data_analysis": True})
    client.post(f"/v1/members/{ann['id']}/points/adjustments", json={"points": 50, "reason": "welcome"})
    client.post(f"/v1/members/{ann['id']}/identities", json={"kind": "pos", "value": "CARD-1"})
    types = [e["type"] for e in client.get("/v1/events", params={"subject_id": ann["id"]}).json()["data"]]
    assert types == ["member.identity_added", "member.points_adjusted", "member.updated",
                     "member.updated", "member.created"]

"""PATCH /v1/tenant/settings: a JSON merge patch (RFC 7396) of the merchant's settings, beside
PUT's replacement. A client that changes one setting must not reset the others (PUT with one
field puts every other back to its default); SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from support import make_tenant, served_app

from haina.client import Haina
from haina.core.db import transaction
from haina.core.schema_types import merge_patch
from haina.platform import service


def settings(client) -> dict:
    r = client.get("/v1/tenant")
    assert r.status_code == 200, r.text
    return r.json()["settings"]


def problem(r, field: str) -> dict:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert field in body["detail"], body
    return body


@pytest.fixture
def shaped(client):
    """Settings that differ from the defaults in several places."""
    r = client.put("/v1/tenant/settings", json={
        "shipping_fee": "8.00", "free_shipping_over": "199.00", "abandoned_cart_hours": 48,
        "time_zone": "Asia/Shanghai", "retention": {"abandoned_carts": 10, "audit_events": 400}})
    assert r.status_code == 200, r.text
    return r.json()["settings"]


def test_a_patch_changes_what_it_names_and_keeps_the_rest(client, shaped):
    r = client.patch("/v1/tenant/settings", json={"tax_rate_bps": 600})
    assert r.status_code == 200, r.text
    assert r.json()["settings"] == {**shaped, "tax_rate_bps": 600}
    assert settings(client) == {**shaped, "tax_rate_bps": 600}
    # PUT still replaces: what it leaves out goes back to the default
    r = client.put("/v1/tenant/settings", json={"tax_rate_bps": 600})
    assert r.json()["settings"]["shipping_fee"] == "0.00"
    assert r.json()["settings"]["abandoned_cart_hours"] == 24


def test_retention_merges_period_by_period(client, shaped):
    r = client.patch("/v1/tenant/settings", json={"retention": {"webhook_attempts": 60}})
    assert r.status_code == 200, r.text
    assert r.json()["settings"]["retention"] == {**shaped["retention"], "webhook_attempts": 60}


def test_null_puts_a_setting_back_to_its_default(client, shaped):
    r = client.patch("/v1/tenant/settings", json={
        "shipping_fee": None, "free_shipping_over": None, "retention": {"audit_events": None}})
    assert r.status_code == 200, r.text
    got = r.json()["settings"]
    assert got["shipping_fee"] == "0.00" and got["free_shipping_over"] is None
    assert got["retention"]["audit_events"] == 365  # the default
    assert got["retention"]["abandoned_carts"] == 10  # kept
    assert got["abandoned_cart_hours"] == 48 and got["time_zone"] == "Asia/Shanghai"


def test_the_merged_whole_is_checked_and_nothing_changes_when_it_fails(client, shaped):
    # each field is valid alone; together a cart would be deleted before it is abandoned
    body = problem(client.patch("/v1/tenant/settings", json={"abandoned_cart_hours": 300}),
                   "abandoned_cart_hours (300) is longer than open carts are kept, 240 hours")
    assert body["type"].endswith("validation-error")
    problem(client.patch("/v1/tenant/settings", json={"retention": {"abandoned_carts": 1}}),
            "abandoned_cart_hours (48)")
    problem(client.patch("/v1/tenant/settings", json={"time_zone": "Mars/Olympus"}),
            "time_zone")
    assert settings(client) == shaped


@pytest.mark.parametrize(("patch", "field"), [
    ({"vat": 5}, "vat"), ({"tax_rate_bps": "600"}, "tax_rate_bps"),
    ({"tax_rate_bps": 10_001}, "tax_rate_bps"), ({"shipping_fee": "8,00"}, "shipping_fee"),
    ({"retention": {"audit_events": 30}}, "retention.audit_events"),
    ({"retention": {"forever": 1}}, "retention.forever"), ({"retention": 5}, "retention")])
def test_a_bad_patch_is_a_422_naming_the_field(client, shaped, patch, field):
    problem(client.patch("/v1/tenant/settings", json=patch), field)
    assert settings(client) == shaped


def test_a_patch_needs_settings_write(client, sessions):
    with transaction(sessions) as s:
        read_only = service.create_token(s, "acme", "settings:read").token
    r = client.patch("/v1/tenant/settings", json={"tax_rate_bps": 1},
                     headers={"Authorization": f"Bearer {read_only}"})
    assert r.status_code == 403 and r.json()["required_scope"] == "settings:write"


def test_the_sdk_updates_one_setting_without_resetting_the_others(engine, sessions):
    _, token = make_tenant(sessions, "sdk-shop")
    with served_app(engine) as url, Haina(url, token, max_wait=2) as shop:
        shop.tenant.replace_settings(shipping_fee="8.00", abandoned_cart_hours=48)
        got = shop.tenant.update_settings(tax_rate_bps=600, retention={"audit_events": 400})
        assert got.settings.shipping_fee == "8.00" and got.settings.abandoned_cart_hours == 48
        assert got.settings.tax_rate_bps == 600 and got.settings.retention.audit_events == 400
        assert shop.tenant.update_settings(shipping_fee=None).settings.shipping_fee == "0.00"


@pytest.mark.parametrize(("target", "patch", "merged"), [  # RFC 7396, appendix A
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
])
def test_merge_patch_follows_the_rfc(target, patch, merged):
    assert merge_patch(target, patch) == merged

"""Every scope the API asks for is one a merchant can grant (issue 9, defect 11)."""

from __future__ import annotations

from haina.core.context import parse_scopes
from haina.core.db import transaction
from haina.core.http import api_routes

SETTINGS = {"shipping_fee": "8.00"}


def scopes_required(app) -> dict[str, str]:
    """``METHOD path`` → the scope its ``require(...)`` dependency checks, for every route."""
    found: dict[str, str] = {}
    for route in api_routes(app.routes):
        stack = list(route.dependant.dependencies)
        while stack:
            dep = stack.pop()
            scope = getattr(dep.call, "required_scope", None)
            if scope is not None:
                for method in route.methods:
                    found[f"{method} {route.path}"] = scope
            stack += dep.dependencies
    return found


def token(sessions, scopes: str) -> dict[str, str]:
    from haina.platform import service
    with transaction(sessions) as s:
        t = service.create_token(s, "acme", scopes).token
    return {"Authorization": f"Bearer {t}"}


def test_every_scope_a_route_requires_can_be_granted(app):
    required = scopes_required(app)
    # the walk sees the routes of every module (a walk that finds nothing proves nothing)
    assert len(required) > 40, required
    for prefix in ("/v1/products", "/v1/orders", "/v1/members", "/v1/ledger", "/v1/events",
                   "/v1/tenant/settings"):
        assert any(key.split(" ", 1)[1].startswith(prefix) for key in required), prefix
    ungrantable = {}
    for key, scope in required.items():
        try:
            assert parse_scopes(scope) == {scope}
        except (ValueError, AssertionError) as e:
            ungrantable[key] = (scope, str(e))
    assert ungrantable == {}


def test_the_scope_named_in_the_settings_403_is_grantable_and_lets_the_token_put_settings(
        client, sessions):
    r = client.put("/v1/tenant/settings", json=SETTINGS,
                   headers=token(sessions, "orders:write catalog:write"))
    assert r.status_code == 403, r.text
    assert r.headers["content-type"] == "application/problem+json"
    scope = r.json()["required_scope"]
    assert scope == "settings:write"
    assert parse_scopes(scope) == {scope}
    r = client.put("/v1/tenant/settings", json=SETTINGS, headers=token(sessions, scope))
    assert r.status_code == 200, r.text
    assert r.json()["settings"]["shipping_fee"] == "8.00"
    # write implies read, and a full-access token still may
    assert client.put("/v1/tenant/settings", json=SETTINGS).status_code == 200
    r = client.put("/v1/tenant/settings", json=SETTINGS, headers=token(sessions, "settings:read"))
    assert r.status_code == 403 and r.json()["required_scope"] == "settings:write"


def test_settings_scopes_are_grantable_from_the_cli():
    assert parse_scopes("settings:read settings:write settings:*") == {
        "settings:read", "settings:write", "settings:*"}

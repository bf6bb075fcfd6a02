"""Direct routes (core.http.direct): the compiled handler answers exactly as FastAPI's route
does, for well-formed requests and for every kind of refusal, on both databases."""

from __future__ import annotations

import pytest
from fastapi import Depends, Request
from fastapi.responses import Response
from fastapi.testclient import TestClient
from pydantic import BaseModel

from haina.core.db import transaction
from haina.core.http import Router, SessionDep, direct, direct_routes

# what differs between two orders placed alike: their identities and times
VOLATILE = {"id", "number", "created_at", "updated_at", "expires_at", "hold_expires_at",
            "order_id", "instance"}


def _stable(value):
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


@pytest.fixture
def both(engine, sessions):
    """Two apps on one database: the order route answered directly, and through FastAPI."""
    from haina.api import create_app
    from haina.core.config import Settings
    from haina.platform import service
    from tests.support import make_tenant
    _, token = make_tenant(sessions)
    with transaction(sessions) as s:
        reader = service.create_token(s, "acme", "orders:read").token
    apps = {flag: create_app(Settings(database_url=str(engine.url), token_cache_seconds=0,
                                      direct_routes=flag), engine=engine)
            for flag in (True, False)}
    with TestClient(apps[True]) as fast, TestClient(apps[False]) as slow:
        for c in (fast, slow):
            c.headers["Authorization"] = f"Bearer {token}"
        r = fast.post("/v1/products", json={"sku": "TIRE-1", "title": "Tire",
                                            "price": {"amount": "99.00", "currency": "CNY"},
                                            "stock": 1000})
        assert r.status_code == 201, r.text
        yield apps, fast, slow, reader


def _same(fast, slow, *args, **kwargs) -> tuple:
    a, b = fast.post(*args, **kwargs), slow.post(*args, **kwargs)
    assert a.status_code == b.status_code, (a.text, b.text)
    assert a.headers["content-type"] == b.headers["content-type"]
    assert _stable(a.json()) == _stable(b.json()), (a.text, b.text)
    # the same headers, rate-limit figures aside
    names = {k for k in a.headers if not k.startswith("ratelimit") and k != "content-length"}
    assert names == {k for k in b.headers if not k.startswith("ratelimit")
                     and k != "content-length"}
    return a, b


def test_the_order_route_is_compiled(both):
    apps, fast, slow, _ = both
    fast.get("/healthz"), slow.get("/healthz")  # builds the middleware stacks
    assert ("POST", "/v1/orders") in apps[True].middleware_stack.direct
    assert not apps[False].middleware_stack.direct


LINE = {"sku": "TIRE-1", "quantity": 1}


@pytest.mark.parametrize("case", [
    "placed", "out-of-stock", "unknown-sku", "zero-quantity", "unknown-field", "not-json",
    "empty", "text-plain", "no-lines", "json-charset"])
def test_direct_and_fastapi_answers_are_the_same(both, case):
    _, fast, slow, _ = both
    body = {
        "placed": {"lines": [LINE]},
        "out-of-stock": {"lines": [{"sku": "TIRE-1", "quantity": 5000}]},
        "unknown-sku": {"lines": [{"sku": "NOPE", "quantity": 1}]},
        "zero-quantity": {"lines": [{"sku": "TIRE-1", "quantity": 0}]},
        "unknown-field": {"lines": [LINE], "colour": "red"},
        "no-lines": {"lines": []},
    }.get(case)
    raw, ctype = {
        "not-json": (b'{"lines": [', "application/json"),
        "empty": (b"", "application/json"),
        "text-plain": (b'{"lines": [{"sku": "TIRE-1", "quantity": 1}]}', "text/plain"),
        "json-charset": (b'{"lines": [{"sku": "TIRE-1", "quantity": 1}]}',
                         "application/json; charset=utf-8"),
    }.get(case, (None, None))
    if raw is None:
        a, b = _same(fast, slow, "/v1/orders", json=body)
    else:
        a, b = _same(fast, slow, "/v1/orders", content=raw, headers={"Content-Type": ctype})
    expected = {"placed": 201, "json-charset": 201, "out-of-stock": 409, "unknown-sku": 404}
    assert a.status_code == expected.get(case, 422), a.text


def test_credentials_and_scopes_are_refused_alike(both):
    _, fast, slow, reader = both
    a, _ = _same(fast, slow, "/v1/orders", json={"lines": [LINE]},
                 headers={"Authorization": ""})
    assert a.status_code == 401 and a.headers["www-authenticate"] == "Bearer"
    a, _ = _same(fast, slow, "/v1/orders", json={"lines": [LINE]},
                 headers={"Authorization": "Bearer nope"})
    assert a.status_code == 401
    a, _ = _same(fast, slow, "/v1/orders", json={"lines": [LINE]},
                 headers={"Authorization": f"Bearer {reader}"})
    assert a.status_code == 403 and a.json()["type"].endswith("insufficient-scope")


def test_idempotency_keys_replay_and_refuse_alike(both):
    _, fast, slow, _ = both
    first = fast.post("/v1/orders", json={"lines": [LINE]}, headers={"Idempotency-Key": "k1"})
    assert first.status_code == 201
    again = fast.post("/v1/orders", json={"lines": [LINE]}, headers={"Idempotency-Key": "k1"})
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    # the key is the merchant's, whichever path answers: the other app replays it too
    other = slow.post("/v1/orders", json={"lines": [LINE]}, headers={"Idempotency-Key": "k1"})
    assert other.json() == first.json() and other.headers["idempotent-replayed"] == "true"
    a, _ = _same(fast, slow, "/v1/orders", json={"lines": [{"sku": "TIRE-1", "quantity": 2}]},
                 headers={"Idempotency-Key": "k1"})
    assert a.status_code == 422 and a.json()["type"].endswith("idempotency-key-reused")


class _Body(BaseModel):
    n: int


async def _who(request: Request) -> str:
    return "me"


def _app_with(route) -> list:
    from fastapi import FastAPI
    router = Router()
    route(router)
    app = FastAPI()
    app.include_router(router)
    return app


def test_routes_a_direct_handler_cannot_take_are_refused_at_startup():
    def path_param(router):
        @router.post("/things/{thing_id}")
        @direct
        def endpoint(thing_id: str, body: _Body) -> Response:
            return Response()

    def query_param(router):
        @router.post("/things")
        @direct
        def endpoint(body: _Body, limit: int = 10) -> Response:
            return Response()

    def returns_model(router):
        @router.post("/things")
        @direct
        def endpoint(body: _Body) -> _Body:
            return body

    for build, says in ((path_param, "static path"), (query_param, "'limit'"),
                        (returns_model, "returns a Response")):
        with pytest.raises(TypeError, match=says):
            direct_routes(_app_with(build), fallback=None)  # type: ignore[arg-type]

    def fine(router):
        @router.post("/things")
        @direct
        def endpoint(session: SessionDep, body: _Body, who: str = Depends(_who)) -> Response:
            return Response()

    assert list(direct_routes(_app_with(fine), fallback=None)) == [  # type: ignore[arg-type]
        ("POST", "/things")]

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
from tests.support import same_answers

# what differs between two orders placed alike: their identities and times
VOLATILE = {"id", "number", "created_at", "updated_at", "expires_at", "hold_expires_at",
            "order_id", "instance"}



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
    same_answers(a, b, VOLATILE)
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
        def endpoint(thing_id: int, body: _Body) -> Response:
            return Response()

    def path_convertor(router):
        @router.post("/things/{rest:path}")
        @direct
        def endpoint(rest: str, body: _Body) -> Response:
            return Response()

    def part_of_a_segment(router):
        @router.post("/things/{thing_id}.json")
        @direct
        def endpoint(thing_id: str, body: _Body) -> Response:
            return Response()

    def shadowed(router):  # FastAPI would answer /things/mine with the first route
        @router.post("/things/mine")
        def mine() -> Response:
            return Response()

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

    for build, says in ((path_param, "plain str"), (path_convertor, "whole segments"),
                        (part_of_a_segment, "whole segments"), (shadowed, "/things/mine"),
                        (query_param, "'limit'"), (returns_model, "returns a Response")):
        with pytest.raises(TypeError, match=says):
            direct_routes(_app_with(build), fallback=None)  # type: ignore[arg-type]

    def fine(router):
        @router.post("/things")
        @direct
        def endpoint(session: SessionDep, body: _Body, who: str = Depends(_who)) -> Response:
            return Response()

    assert list(direct_routes(_app_with(fine), fallback=None)) == [  # type: ignore[arg-type]
        ("POST", "/things")]

    def templated(router):
        @router.get("/things/{thing_id}")  # another method: never the same request
        def read(thing_id: str) -> Response:
            return Response()

        @router.post("/things/{thing_id}/parts/{part}")
        @direct
        def endpoint(thing_id: str, part: str, body: _Body) -> Response:
            return Response()

    assert list(direct_routes(_app_with(templated), fallback=None)) == [  # type: ignore
        ("POST", "/things/{thing_id}/parts/{part}")]


# ---------------------------------------------------------------- templated paths, one app

class _Counted:
    """The FastAPI app, counting the requests it is handed (by the edge or a direct route)."""

    def __init__(self, app) -> None:
        self.app, self.calls = app, 0

    async def __call__(self, scope, receive, send) -> None:
        self.calls += scope["type"] == "http"
        await self.app(scope, receive, send)


def _things(direct_on: bool):
    """A FastAPI app with one templated direct route, behind the HTTP edge; and its
    counter (the requests FastAPI answered)."""
    from fastapi import FastAPI

    from haina.core.asgi import HttpEdge
    from haina.core.http import install_problem_handlers

    router = Router()

    @router.post("/things/{thing_id}/parts/{part}")
    @direct
    def endpoint(thing_id: str, part: str, body: _Body, request: Request,
                 who: str = Depends(_who)) -> Response:
        import orjson
        return Response(orjson.dumps({"thing": thing_id, "part": part, "n": body.n, "who": who,
                                      "params": request.path_params}),
                        media_type="application/json")

    app = FastAPI()
    app.include_router(router)
    install_problem_handlers(app)
    inner = _Counted(app)
    table = direct_routes(app, inner) if direct_on else None
    return HttpEdge(inner, 1 << 20, (), table), inner


@pytest.fixture
def things():
    (fast, counted), (slow, _) = _things(True), _things(False)
    with TestClient(fast) as f, TestClient(slow) as s:
        yield f, s, counted


def _alike(fast, slow, path, **kwargs):
    a, b = fast.post(path, **kwargs), slow.post(path, **kwargs)
    assert (a.status_code, a.headers.get("content-type"), a.content) == \
        (b.status_code, b.headers.get("content-type"), b.content)
    return a


def test_a_templated_path_is_matched_by_the_edge(things):
    fast, slow, counted = things
    r = _alike(fast, slow, "/things/t1/parts/wheel", json={"n": 2})
    assert r.json() == {"thing": "t1", "part": "wheel", "n": 2, "who": "me",
                        "params": {"thing_id": "t1", "part": "wheel"}}
    assert counted.calls == 0  # answered directly


def test_path_parameters_are_percent_decoded_as_starlette_does(things):
    fast, slow, counted = things
    r = _alike(fast, slow, "/things/a%20b%C3%A9/parts/x%25y", json={"n": 1})
    assert (r.json()["thing"], r.json()["part"]) == ("a bé", "x%y")
    assert counted.calls == 0
    # an escaped slash is a slash once decoded: no template matches it, nor FastAPI's route
    r = _alike(fast, slow, "/things/a%2Fb/parts/x", json={"n": 1})
    assert r.status_code == 404 and counted.calls == 1
    # "?" in a parameter: Starlette escapes it again in the URL (the problem's instance);
    # FastAPI answers it
    r = _alike(fast, slow, "/things/a%3Fb/parts/x", json={"n": 1})
    assert r.json()["thing"] == "a?b" and counted.calls == 2


@pytest.mark.parametrize("path", ["/things/t1/parts", "/things/t1/parts/x/y", "/things//parts/x",
                                  "/things/t1/bits/x", "/things/t1/parts/x/"])
def test_a_path_no_template_matches_goes_to_fastapi(things, path):
    fast, slow, counted = things
    r = _alike(fast, slow, path, json={"n": 1}, follow_redirects=False)
    assert r.status_code in (404, 307) and counted.calls == 1  # 307: the slash redirected


@pytest.mark.parametrize("raw", [b'{"n": ', b'{"n": "many"}', b"", b"[]"])
def test_a_malformed_body_on_a_templated_path_gets_fastapis_422(things, raw):
    fast, slow, counted = things
    r = _alike(fast, slow, "/things/t1/parts/x", content=raw,
               headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert counted.calls == 1  # handed, unchanged, to the FastAPI route
    # and another method on the path is FastAPI's too (405)
    assert fast.get("/things/t1/parts/x").status_code == 405 and counted.calls == 2

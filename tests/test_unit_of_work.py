"""One request is one unit of work: committed when the endpoint returns, rolled back when it
raises; any other way of asking for a session is refused when the app is built."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from haina.core.db import make_sessionmaker
from haina.core.errors import Invalid
from haina.core.events import Event, record_event
from haina.core.http import (
    Router,
    SessionDep,
    check_units_of_work,
    get_session,
    install_problem_handlers,
)


def _app(engine, router) -> FastAPI:
    app = FastAPI()
    app.state.sessionmaker = make_sessionmaker(engine)
    install_problem_handlers(app)
    app.include_router(router)
    check_units_of_work(app)
    return app


def _events(engine, type_: str) -> int:
    with make_sessionmaker(engine)() as s:
        return s.scalar(select(func.count()).select_from(Event).where(Event.type == type_))


def test_a_request_commits_when_it_returns_and_rolls_back_when_it_raises(engine, tenant):
    router = Router()

    @router.post("/ok")
    def ok(session: SessionDep) -> dict:
        record_event(session, tenant.id, "test.kept", "x", {})
        return {"ok": True}

    @router.post("/fail")
    def fail(session: SessionDep) -> dict:
        record_event(session, tenant.id, "test.undone", "x", {})
        session.flush()  # written to the database, then undone by the failure
        raise Invalid("no", slug="test-failure")

    with TestClient(_app(engine, router)) as client:
        assert client.post("/ok").status_code == 200
        assert client.post("/fail").status_code == 422
    assert _events(engine, "test.kept") == 1
    assert _events(engine, "test.undone") == 0


def test_a_session_asked_for_with_a_default_value_is_refused_at_startup():
    router = Router()
    with pytest.raises(TypeError, match="SessionDep"):
        @router.get("/old-style")
        def old_style(session: Session = Depends(get_session)) -> dict:
            return {}


def test_an_async_endpoint_cannot_take_a_session():
    router = Router()
    with pytest.raises(TypeError, match="async endpoint"):
        @router.get("/async")
        async def in_the_loop(session: SessionDep) -> dict:
            return {}


def test_a_route_outside_the_haina_router_cannot_take_a_session(engine):
    plain = APIRouter()

    @plain.get("/plain")
    def plain_route(session: SessionDep) -> dict:
        return {}

    with pytest.raises(TypeError, match="outside a haina Router"):
        _app(engine, plain)


def test_one_request_asks_for_one_session():
    router = Router()
    with pytest.raises(TypeError, match="one unit of work"):
        @router.get("/two")
        def two(a: SessionDep, b: SessionDep) -> dict:
            return {}


def test_the_lifecycle_walk_finds_a_transition_not_in_the_table():
    from haina.orders.service import ORDER_LIFECYCLE
    ok = [("order.created", "pending_payment"), ("order.paid", "paid"),
          ("order.cancelled", "cancelled")]
    assert ORDER_LIFECYCLE.walk(ok) == []
    # what cancelling a paid order told before the checkout flow existed
    old = [("order.created", "pending_payment"), ("order.paid", "paid"),
           ("order.refunded", "refunded"), ("order.cancelled", "cancelled")]
    assert ORDER_LIFECYCLE.walk(old) == [
        "order.cancelled: refunded → cancelled is not in the order table"]
    assert ORDER_LIFECYCLE.walk([("order.teleported", "paid")]) != []

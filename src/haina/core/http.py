"""HTTP glue shared by every module's router: sessions, problem responses, idempotent POSTs."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextvars import Token
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin, get_type_hints
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Depends, Header, Request
from fastapi.dependencies.utils import get_typed_signature
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError, create_model
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from haina.core.context import Tenant, current_actor
from haina.core.db import lean_transaction, transaction
from haina.core.errors import PROBLEM_BASE, PROBLEM_MEDIA_TYPE, Problem
from haina.core.idempotency import run_idempotent
from haina.core.loop import run as run_on_loop
from haina.core.ratelimit import Plan, RateLimited

log = logging.getLogger("haina")
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class FastJSON(JSONResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=_default)


def _default(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    raise TypeError


# ---------------------------------------------------------------- sync endpoints, one pool

_pool: ThreadPoolExecutor | None = None


def configure_threads(threads: int) -> None:
    """Run sync endpoints in ``threads`` threads per process (``HAINA_THREADS``)."""
    global _pool
    old, _pool = _pool, ThreadPoolExecutor(threads, thread_name_prefix="haina-endpoint")
    if old is not None:
        old.shutdown(wait=False)


def _session_param(param: inspect.Parameter) -> bool:
    """Whether ``param`` asks for the request's session in the one supported way."""
    return get_origin(param.annotation) is Annotated and any(
        getattr(m, "dependency", None) is get_session for m in param.annotation.__metadata__)


def _asks_for_session_otherwise(param: inspect.Parameter) -> bool:
    return getattr(param.default, "dependency", None) is get_session


def _offload(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """An async endpoint that runs the sync ``endpoint`` in the process's thread pool, inside
    the request's unit of work.

    FastAPI would hop through anyio (``to_thread.run_sync``): a capacity limiter, a cancel
    scope and a context copy per call; a plain executor hop costs about 0.2 ms less CPU per
    request. A parameter declared ``session: SessionDep`` is not solved by FastAPI (an async
    generator dependency and an exit stack per request) but opened in the pool thread as one
    :func:`~haina.core.db.transaction`: committed when the endpoint returns, rolled back when
    it raises, and closed there before the thread is released, so no second hop is ever
    needed to give back locks and the connection (measured on the order path: about 5 % more
    orders per second than with the dependency)."""
    typed = get_typed_signature(endpoint)
    misdeclared = [name for name, p in typed.parameters.items()
                   if _asks_for_session_otherwise(p)]
    if misdeclared:
        raise TypeError(f"{endpoint.__module__}.{endpoint.__qualname__}: declare the session "
                        f"as `{misdeclared[0]}: SessionDep` (haina.core.http), not with a "
                        "Depends(get_session) default: only SessionDep gets the request's "
                        "unit of work")
    sessions = [name for name, p in typed.parameters.items() if _session_param(p)]
    if len(sessions) > 1:
        raise TypeError(f"{endpoint.__module__}.{endpoint.__qualname__}: one request is one "
                        f"unit of work; ask for one session, not {len(sessions)}")
    session_name = sessions[0] if sessions else None
    signature = inspect.signature(endpoint)
    # FastAPI passes one Request (to the last parameter asking for it): the endpoint's own,
    # or one added to the wrapper, for the session factory
    own_request = next((name for name, p in typed.parameters.items()
                        if p.annotation is Request), None)
    request_name = own_request or _REQUEST
    params = [p for name, p in signature.parameters.items() if name != session_name]
    if own_request is None:
        params.append(inspect.Parameter(_REQUEST, inspect.Parameter.KEYWORD_ONLY,
                                        annotation=Request))
    signature = signature.replace(parameters=params)

    def call(kwargs: dict[str, Any], factory: str = "sessionmaker") -> Any:
        request = kwargs[request_name] if own_request else kwargs.pop(_REQUEST)
        admitted = admit(request, kwargs)
        try:
            if session_name is None:
                return endpoint(**kwargs)
            unit = lean_transaction if factory == LOOP_SESSIONS else transaction
            with unit(getattr(request.app.state, factory)) as session:
                kwargs[session_name] = session
                return endpoint(**kwargs)
        finally:
            if admitted is not None:
                current_actor.reset(admitted)

    def refresh(loop: asyncio.AbstractEventLoop, arguments: dict[str, Any],
                again: Callable[[], float | None] | None) -> None:
        """The endpoint run for what it keeps, its answer dropped: the request was answered
        (and admitted) on the event loop already, so no rate-limit token is taken again.
        Then ``again()`` says in how many seconds to run it once more (None: not)."""
        kwargs = dict(arguments)
        request = kwargs[request_name] if own_request else kwargs.pop(_REQUEST)
        tenant = next((v for v in kwargs.values() if isinstance(v, Tenant)), None)
        actor = current_actor.set(tenant.actor()) if tenant is not None else None
        try:
            if session_name is None:
                endpoint(**kwargs)
            else:
                with transaction(request.app.state.sessionmaker) as session:
                    kwargs[session_name] = session
                    endpoint(**kwargs)
        except Exception:  # noqa: BLE001 — the next request that misses meets it again
            log.warning("refreshing a kept answer of %s failed", request.scope.get("path"),
                        exc_info=True)
        finally:
            if actor is not None:
                current_actor.reset(actor)
        delay = again() if again is not None else None
        if delay is not None and not loop.is_closed():
            loop.call_soon_threadsafe(_schedule, loop, delay, refresh, arguments, again)

    kept = getattr(endpoint, _ON_LOOP, None)
    unit_on_loop = session_name is not None and getattr(endpoint, _LOOP_UNIT, False)

    @functools.wraps(endpoint)
    async def run(**kwargs: Any) -> Any:
        if kept is not None:  # an answer from memory: no thread, no queue behind the pool
            answered = kept(kwargs)
            if answered is not None:
                if answered.refresh_in is not None:  # the next one, made in the background
                    _schedule(asyncio.get_running_loop(), answered.refresh_in, refresh, kwargs,
                              answered.again)
                if _admitted_on_loop(kwargs[request_name if own_request else _REQUEST],
                                     kwargs):
                    return answered.response
        if unit_on_loop and getattr(kwargs[request_name if own_request else _REQUEST].app.state,
                                    LOOP_SESSIONS, None) is not None:
            return await run_on_loop(call, kwargs, LOOP_SESSIONS)  # no hop (core.loop)
        return await asyncio.get_running_loop().run_in_executor(_executor(), call, kwargs)

    run.__signature__ = signature  # type: ignore[attr-defined]
    run.__haina_unit_of_work__ = True  # type: ignore[attr-defined]
    return run


_ON_LOOP = "__haina_on_loop__"
_LOOP_UNIT = "__haina_loop_unit__"
#: the app state's sessionmaker on core.loop's engine (set while the app is served, on
#: PostgreSQL with ``HAINA_LOOP_UNITS`` on)
LOOP_SESSIONS = "loop_sessionmaker"
E = TypeVar("E", bound=Callable[..., Any])


@dataclass(frozen=True)
class LoopAnswer:
    """What an :func:`on_loop` look found: the response, and in how many seconds the
    endpoint should run in the background (:func:`_background`, its answer dropped) to make
    the next kept answer (None: it need not)."""

    response: Response
    refresh_in: float | None = None
    #: asked after each such run: in how many seconds to run the endpoint again (None: not)
    again: Callable[[], float | None] | None = None


_refresher: ThreadPoolExecutor | None = None


def _background() -> ThreadPoolExecutor:
    """The refresher: two threads per process for work done ahead of the requests that will
    want it (a kept answer's next one, a rate-limit lease's next one), apart from the
    endpoints' pool so that it is not late behind the requests queued there."""
    global _refresher
    if _refresher is None:
        _refresher = ThreadPoolExecutor(2, thread_name_prefix="haina-refresh")
    return _refresher


def _in_background(job: Callable[[], None]) -> None:
    def run() -> None:
        try:
            job()
        except Exception:  # noqa: BLE001 — work ahead: the request that needs it redoes it
            log.warning("background work failed", exc_info=True)
    _background().submit(run)


def _schedule(loop: asyncio.AbstractEventLoop, delay: float,
              refresh: Callable[..., None], kwargs: dict[str, Any],
              again: Callable[[], float | None] | None) -> None:
    """Run ``refresh`` ``delay`` seconds from now in the refresher's thread
    (:func:`_background`)."""
    loop.call_later(delay, loop.run_in_executor, _background(), refresh, loop, dict(kwargs),
                    again)


def on_loop(answer: Callable[[dict[str, Any]], LoopAnswer | None]) -> Callable[[E], E]:
    """Mark a sync endpoint of a :class:`Router` whose answer is sometimes in memory (a kept
    public answer): ``answer(kwargs)`` gets the endpoint's arguments (no session) on the
    event loop before the request goes to the thread pool, and returns a :class:`LoopAnswer`
    when it has the response without any I/O or wait, else None. The request is then
    admitted there as the pool would admit it (rate limit, audit actor) when that too needs
    no I/O (a token of the process's lease, core.ratelimit); otherwise, and whenever
    ``answer`` has none, the endpoint runs in the pool as ever. So a kept answer never
    queues behind the pool's carts and checkouts. With ``refresh_in`` (scheduled whoever
    answers), the endpoint runs that many seconds later in a background thread (not the
    pool's), unadmitted, its answer dropped: what it keeps is the point (the next answer, made before
    this one ends); then ``again()`` may ask for another run. ``answer`` must not block."""
    def mark(endpoint: E) -> E:
        setattr(endpoint, _ON_LOOP, answer)
        return endpoint
    return mark


def _admitted_on_loop(request: Request, kwargs: dict[str, Any]) -> bool:
    """Whether the request was admitted without I/O (False: the rate limiter needs the
    database, so the pool decides, and answers; a 429 is raised)."""
    decided, admitted = admit_nowait(request, kwargs)
    if admitted is not None:
        current_actor.reset(admitted)
    return decided


RATE_STATE = "haina_ratelimit"


def _buckets_of(request: Request, tenant: Tenant) -> list[tuple[str, tuple[float, int], str]]:
    """The rate-limit buckets a request of ``tenant`` takes from: (key, plan, whose)."""
    state = request.app.state
    if getattr(state, "buckets", None) is None or tenant.rate_plan is None:
        return []
    found = []
    plan = state.settings.rate_limit_plans.get(tenant.rate_plan)
    if plan is not None:
        found.append((tenant.app_id or tenant.token_id or tenant.publishable_key_id or "",
                      plan, "this credential"))
    # a storefront buyer has a bucket of their own, besides the publishable key's
    buyer_plan = state.settings.rate_limit_plans.get("buyer")
    if tenant.buyer_id is not None and buyer_plan is not None:
        found.append((f"buyer:{tenant.buyer_id}", buyer_plan, "this buyer"))
    return found


def admit(request: Request, kwargs: dict[str, Any]) -> Token[tuple[str, str] | None] | None:
    """Before the work of a request made with a credential: take a token from its rate-limit
    bucket (429 when empty; the decision goes to the response's headers through the request
    state, see core.asgi) and name its actor for the audit trail (what ``record_event``
    writes). Returns the actor's context token, to reset when the request ends."""
    tenant = next((v for v in kwargs.values() if isinstance(v, Tenant)), None)
    if tenant is None:
        return None
    for key, plan, whose in _buckets_of(request, tenant):
        _decided(request, request.app.state.buckets.take(tenant.id, key, _plan(plan)), plan,
                 whose)
    return current_actor.set(tenant.actor())


def admit_nowait(request: Request, kwargs: dict[str, Any]
                 ) -> tuple[bool, Token[tuple[str, str] | None] | None]:
    """:func:`admit` if it can be decided without I/O (one bucket, and a token of this
    process's lease of it, or the ``memory`` store): (True, the actor's context token);
    (False, None) when it cannot, and then nothing was taken."""
    tenant = next((v for v in kwargs.values() if isinstance(v, Tenant)), None)
    if tenant is None:
        return True, None
    taken = _buckets_of(request, tenant)
    if len(taken) > 1:
        return False, None  # two buckets: a token of one could be spent for nothing
    for key, plan, whose in taken:
        decision = request.app.state.buckets.take_nowait(tenant.id, key, _plan(plan),
                                                         renew=_in_background)
        if decision is None:
            return False, None
        _decided(request, decision, plan, whose)
    return True, current_actor.set(tenant.actor())


_PLANS: dict[tuple[float, int], Plan] = {}


def _plan(plan: tuple[float, int]) -> Plan:
    """The settings' plan (per second, burst) as the limiter's ``Plan``, made once."""
    found = _PLANS.get(plan)
    if found is None:
        found = _PLANS[plan] = Plan(*plan)
    return found


def _decided(request: Request, decision: Any, plan: tuple[float, int], whose: str) -> None:
    request.scope.setdefault("state", {})[RATE_STATE] = decision
    if not decision.allowed:
        raise RateLimited(f"more than {plan[0]:g} requests per second (a burst of "
                          f"{plan[1]}) for {whose}; retry after "
                          f"{decision.retry_after} s", retry_after=decision.retry_after)


def _executor() -> ThreadPoolExecutor:
    if _pool is None:
        from haina.core.config import get_settings
        configure_threads(get_settings().threads)
    assert _pool is not None
    return _pool


async def in_unit_of_work(request: Request, work: Callable[[Session], T],
                          tenant: Tenant | None = None) -> T:
    """For an async endpoint (one that must ``await`` the body first, such as an upload): run
    ``work(session)`` in the thread pool as the request's unit of work (committed if it
    returns, rolled back if it raises). Given the credential's ``tenant``, the request is
    admitted first as a sync endpoint's is (rate limit, audit actor: :func:`admit`)."""
    factory = request.app.state.sessionmaker

    def call() -> T:
        admitted = admit(request, {"tenant": tenant}) if tenant is not None else None
        try:
            with transaction(factory) as session:
                return work(session)
        finally:
            if admitted is not None:
                current_actor.reset(admitted)

    return await asyncio.get_running_loop().run_in_executor(_executor(), call)


_REQUEST = "haina_request_"


class Router(APIRouter):
    """``APIRouter`` whose sync endpoints run in Haina's thread pool (see :func:`_offload`)."""

    def add_api_route(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if inspect.iscoroutinefunction(endpoint):
            if any(_session_param(p) or _asks_for_session_otherwise(p)
                   for p in get_typed_signature(endpoint).parameters.values()):
                raise TypeError(f"{endpoint.__module__}.{endpoint.__qualname__}: an async "
                                "endpoint cannot take a session (it would block the event "
                                "loop); make it sync, or use in_unit_of_work(request, work)")
        else:
            endpoint = _offload(endpoint)
        super().add_api_route(path, endpoint, **kwargs)


class ProblemOut(BaseModel):
    """RFC 9457 problem details; extra members (``sku``, ``errors``, …) depend on ``type``."""

    model_config = {"extra": "allow"}

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None


def _problem_doc(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemOut"}}}}


# What any operation may answer besides its success (documented on every route).
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem_doc("Bad request"),
    401: _problem_doc("Missing, unknown or revoked token"),
    403: _problem_doc("The token lacks the scope this operation needs"),
    404: _problem_doc("Not found, or another merchant's"),
    409: _problem_doc("Conflict with the current state (e.g. out-of-stock, invalid-state)"),
    413: _problem_doc("Payload too large"),
    415: _problem_doc("Unsupported media type"),
    422: _problem_doc("Invalid request (validation-error and others)"),
}


def get_session() -> Session:
    """The marker of the request's session: declare ``session: SessionDep`` on a sync endpoint
    of a :class:`Router` and the router opens it as the request's unit of work (see
    :func:`_offload`). FastAPI itself never runs this; if it does, a route was declared
    another way, and the app refuses to start (:func:`check_units_of_work`)."""
    raise RuntimeError("get_session ran as a FastAPI dependency: declare `session: SessionDep` "
                       "on a sync endpoint of haina.core.http.Router")


SessionDep = Annotated[Session, Depends(get_session)]
"""The request's session: one transaction, committed if the endpoint returns, rolled back if
it raises. Services flush, never commit or roll back."""


def api_routes(routes: Any) -> Iterator[Any]:
    """Every ``APIRoute`` of ``routes`` (an app's or a router's), included routers' too."""
    from fastapi.routing import APIRoute
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI ≥ 0.16x nests routers
        if included is not None:
            yield from api_routes(included.routes)
        elif isinstance(route, APIRoute):
            yield route


def check_units_of_work(app: Any) -> None:
    """Refuse to start when a route asks for a session in a way the router does not open as
    the request's unit of work (a plain ``APIRouter``, say)."""

    def uses_session(dependant: Any) -> bool:
        return dependant.call is get_session or any(uses_session(d)
                                                    for d in dependant.dependencies)

    for route in api_routes(app.routes):
        if uses_session(route.dependant) \
                and not getattr(route.endpoint, "__haina_unit_of_work__", False):
            raise TypeError(f"route {route.path} asks for a session outside a haina Router's "
                            "sync endpoint: its transaction would never be committed")


def problem_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE,
                    headers=headers)


def json_out(model: BaseModel | Any, status: int = 200) -> Response:
    body = model.model_dump(mode="json") if isinstance(model, BaseModel) else model
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


IdempotencyKeyHeader = Header(None, alias="Idempotency-Key",
                              description="replays the first response for the same key and body")


def create(request: Request, session: Session, tenant: Tenant, key: str | None,
           body: BaseModel | None, produce: Callable[[], M], status: int = 201,
           answer: Callable[[M], tuple[int, Any] | None] | None = None,
           read_first: bool = True) -> Response:
    """Run a creating POST under its ``Idempotency-Key``; answer ``status``. The request's
    unit of work commits the work and the key together.

    ``answer`` may turn a result into another (status, body), e.g. a declined payment that is
    recorded (committed) yet answered with a 402 problem. ``read_first``: as for
    ``core.idempotency.run_idempotent`` (False only for work all of whose effects are in
    the database)."""
    # the request's fingerprint is needed only under a key
    payload = body.model_dump_json() if body is not None and key is not None else ""
    route = f"{request.method} {request.scope['path']}" if key is not None else ""

    def run() -> tuple[int, Any]:
        result = produce()
        special = answer(result) if answer else None
        if special is None and key is None:  # nothing kept: the JSON itself (pydantic's dump)
            return status, type(result).__pydantic_serializer__.to_json(result)
        return special or (status, result.model_dump(mode="json"))

    # the route answers with the outcome: nothing of its unit of work follows (``last``)
    outcome = run_idempotent(session, tenant, key, route, payload, run,
                             ttl_hours=request.app.state.settings.idempotency_ttl_hours,
                             instance=request.scope["path"], read_first=read_first, last=True)
    if isinstance(outcome.body, bytes):  # made just now, already JSON
        return Response(outcome.body, status_code=outcome.status, media_type="application/json")
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    if outcome.problem or (isinstance(outcome.body, dict) and "type" in outcome.body
                           and outcome.status >= 400):
        return problem_response(outcome.status, outcome.body, headers)
    return Response(orjson.dumps(outcome.body), status_code=outcome.status,
                    media_type="application/json", headers=headers)


def problem_of(exc: Exception, method: str, path: str) -> Response:
    """The problem+json answer to ``exc`` raised while handling ``method path``: what every
    route answers (the app's exception handlers and :class:`DirectRoute` both use it)."""
    if isinstance(exc, Problem):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problem_response(exc.status, exc.to_dict(path), headers)
    if isinstance(exc, RequestValidationError):
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
                  for e in exc.errors()]
        first = errors[0] if errors else {"loc": [], "msg": "invalid"}
        where = ".".join(str(p) for p in first["loc"][1:] or first["loc"])
        return problem_response(422, {
            "type": PROBLEM_BASE + "validation-error", "title": "Invalid request", "status": 422,
            "detail": f"{where}: {first['msg']}" if where else str(first["msg"]),
            "instance": path, "errors": errors})
    if isinstance(exc, StarletteHTTPException):
        slug = {404: "not-found", 405: "method-not-allowed", 401: "unauthorized"}.get(
            exc.status_code, "http-error")
        return problem_response(exc.status_code, {
            "type": PROBLEM_BASE + slug, "title": str(exc.detail), "status": exc.status_code,
            "detail": str(exc.detail), "instance": path}, getattr(exc, "headers", None))
    log.error("unhandled error on %s %s", method, path, exc_info=exc)
    return problem_response(500, {
        "type": PROBLEM_BASE + "internal-error", "title": "Internal error", "status": 500,
        "detail": "the server failed to handle this request; it has been logged",
        "instance": path})


def install_problem_handlers(app: Any) -> None:
    async def handle(request: Request, exc: Exception) -> Response:
        return problem_of(exc, request.method, request.url.path)

    for kind in (Problem, RequestValidationError, StarletteHTTPException, Exception):
        app.add_exception_handler(kind, handle)


# ---------------------------------------------------------------- direct routes

_DIRECT = "__haina_direct__"
_REQUEST_ONLY = "__haina_request_only__"
F = TypeVar("F", bound=Callable[..., Any])
D = TypeVar("D", bound=Callable[..., Any])
_SEGMENT_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# what a path parameter may not hold on a direct route: Starlette writes the request's URL
# (problem+json ``instance``) with these escaped again, so FastAPI answers those
_ODD = ("?", "#", "\\")


def loop_unit(endpoint: F) -> F:
    """Mark a sync endpoint whose unit of work runs on the event loop (core.loop) where the
    database allows (PostgreSQL; in the thread pool otherwise): a short unit that only waits
    on the database — no long CPU work, no blocking network call, no wait on another request
    (core.loop says what it must not do). Put it under the ``@router.post(...)`` line."""
    setattr(endpoint, _LOOP_UNIT, True)
    return endpoint


def direct(endpoint: F) -> F:
    """Mark a busy route to be answered by a :class:`DirectRoute` (put it under the
    ``@router.post(...)`` line). The route stays a FastAPI route: its OpenAPI entry, and the
    answer to every request the direct handler does not take, are FastAPI's."""
    setattr(endpoint, _DIRECT, True)
    return endpoint


def request_only(call: Callable[[Request], Awaitable[Any]]) -> Callable[[D], D]:
    """Mark a dependency whose value is exactly ``await call(request)``: its other parameters
    only document the request in OpenAPI (security schemes made with ``auto_error=False``,
    which never refuse and whose values it ignores). A :class:`DirectRoute` then calls
    ``call`` instead of solving them."""
    def mark(dependency: D) -> D:
        setattr(dependency, _REQUEST_ONLY, call)
        return dependency
    return mark


def replaying(raw: bytes, then: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
    """An ASGI ``receive`` giving ``raw`` as the whole request body once, then what ``then``
    gives (the connection's own ``receive``: a disconnect, say)."""
    sent = False

    async def receive() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return await then()
    return receive


#: query strings whose validated parameters a direct route keeps (then it starts again), of
#: at most QUERY_KEPT_BYTES each (unknown parameters are ignored, yet part of the string)
QUERIES_KEPT = 1024
QUERY_KEPT_BYTES = 512


class DirectRoute:
    """A compiled handler for one route of a :class:`Router`, called by the HTTP edge
    (``core.asgi.HttpEdge``) before FastAPI's middleware and routing.

    FastAPI solves each request's parameters generically (dependency solving, field by field
    validation, an exit stack, middleware layers for features Haina does not use): on the
    order path that is about a fifth of the server's CPU. The route's parameters are analysed
    once here instead; a route qualifies when it takes only path parameters (``{name}``, a
    whole segment, a plain ``str``), a JSON body model, headers, the request, ``Depends`` on
    an async ``(request)`` callable (a scope check, or a dependency marked
    :func:`request_only`) and the session, and returns a ``Response``; and when no other
    route of the app could take a request it matches (:func:`direct_routes`).

    Only a well-formed request is answered here: a body that is not ``application/json``,
    not JSON or not valid for its model is handed, unchanged, to the FastAPI route, so every
    validation error reads exactly as elsewhere; so is a request carrying a header that a
    middleware it would skip acts on (``fallback_headers``: ``Origin`` under
    ``/store/v1/``, for its CORS headers). An exception raised after that (a 401 from the
    credential, a problem from the service) is answered by :func:`problem_of`, as the app's
    handlers answer it."""

    def __init__(self, route: Any, fallback: Callable[..., Awaitable[None]],
                 fallback_headers: Collection[bytes] = ()) -> None:
        from fastapi import params
        from starlette.convertors import StringConvertor

        self.fallback = fallback
        self.fallback_headers = frozenset(fallback_headers)
        self.endpoint = route.endpoint
        self.path = route.path
        original = inspect.unwrap(route.endpoint)
        where = f"{original.__module__}.{original.__qualname__}"
        # (literal, None) or (None, parameter) per segment of a templated path; None: static
        self.segments: tuple[tuple[str | None, str | None], ...] | None = None
        path_params: set[str] = set()
        if "{" in route.path:
            segments: list[tuple[str | None, str | None]] = []
            for part in route.path.split("/"):
                named = _SEGMENT_PARAM.fullmatch(part)
                if named is not None and isinstance(
                        route.param_convertors.get(named[1]), StringConvertor):
                    segments.append((None, named[1]))
                    path_params.add(named[1])
                elif "{" in part or "}" in part:
                    raise TypeError(f"{where}: a direct route's path parameters are whole "
                                    f"segments of plain strings ({{name}}), not {route.path}")
                else:
                    segments.append((part, None))
            self.segments = tuple(segments)
        if get_type_hints(original).get("return") is not Response:
            raise TypeError(f"{where}: a direct route returns a Response")
        if route.dependencies:
            raise TypeError(f"{where}: a direct route has no route-level dependencies")
        self.body: tuple[str, type[BaseModel]] | None = None
        self.query: type[BaseModel] | None = None
        # the query parameters validated, by the raw query string (the same few strings
        # come again and again: a mobile shop's catalogue and search calls); scalars only
        self.queries: dict[bytes, dict[str, Any]] = {}
        query_fields: dict[str, Any] = {}
        self.headers: list[tuple[str, bytes]] = []
        self.dependencies: list[tuple[str, Callable[[Request], Awaitable[Any]]]] = []
        self.request_name = _REQUEST
        taken: set[str] = set()
        for name, p in get_typed_signature(original).parameters.items():
            default = p.default
            dependency = getattr(default, "dependency", None)
            dependency = getattr(dependency, _REQUEST_ONLY, dependency)
            if _session_param(p):
                continue  # opened by the endpoint's wrapper (_offload)
            if p.annotation is Request:
                self.request_name = name
            elif name in path_params:
                if p.annotation is not str or default is not inspect.Parameter.empty:
                    raise TypeError(f"{where}: path parameter {name!r} of a direct route is "
                                    "a plain str (no default, no Path(...))")
                taken.add(name)
            elif isinstance(default, params.Depends) and dependency is not None \
                    and inspect.iscoroutinefunction(dependency) \
                    and list(inspect.signature(dependency).parameters) == ["request"]:
                self.dependencies.append((name, dependency))
            elif isinstance(default, params.Header) and default.alias \
                    and default.default is None:
                self.headers.append((name, default.alias.lower().encode("latin-1")))
            elif isinstance(default, params.Query) and _scalar(p.annotation):
                query_fields[name] = (p.annotation, default)
            elif isinstance(p.annotation, type) and issubclass(p.annotation, BaseModel) \
                    and p.default is inspect.Parameter.empty and self.body is None:
                self.body = (name, p.annotation)
            else:
                raise TypeError(f"{where}: parameter {name!r} cannot be taken by a direct "
                                "route (path parameter, body model, header, request, "
                                "Depends(request) only)")
        if taken != path_params:
            raise TypeError(f"{where}: the path's parameters {sorted(path_params - taken)} "
                            "are not the endpoint's")
        if query_fields:
            # the query parameters validated together, as FastAPI validates each (the same
            # types and Query constraints, by alias), in one model
            self.query = create_model(f"{original.__name__}_query", **query_fields)

    def match(self, parts: list[str]) -> dict[str, str] | None:
        """The path parameters of a request path split at its slashes (as the server
        decoded it, which is what Starlette matches), when it is this route's; None when it
        is not, or when a parameter is one FastAPI had better answer (empty, or odd)."""
        assert self.segments is not None
        if len(parts) != len(self.segments):
            return None
        found: dict[str, str] = {}
        for (literal, name), part in zip(self.segments, parts, strict=True):
            if name is None:
                if part != literal:
                    return None
            elif not part or any(c in part for c in _ODD):
                return None
            else:
                found[name] = part
        return found

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        chunks = []
        while True:  # BodyTooLarge from the edge's receive propagates to the edge
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        replay = replaying(raw, receive)
        kwargs: dict[str, Any] = {}
        content_type = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name in self.fallback_headers:
                await self.fallback(scope, replay, send)
                return
            else:
                for param, header in self.headers:
                    if name == header and param not in kwargs:
                        kwargs[param] = value.decode("latin-1")
        if self.body is not None:
            try:
                if content_type is None or \
                        content_type.split(b";")[0].strip().lower() != b"application/json":
                    raise ValueError(content_type)
                kwargs[self.body[0]] = self.body[1].model_validate(orjson.loads(raw))
            except (ValueError, ValidationError):  # orjson's error is a ValueError
                await self.fallback(scope, replay, send)
                return
        for param, _ in self.headers:
            kwargs.setdefault(param, None)
        if self.query is not None:
            raw_query = scope["query_string"]
            values = self.queries.get(raw_query)
            if values is None:
                try:
                    values = self.query.model_validate(dict(parse_qsl(
                        raw_query.decode("latin-1"), keep_blank_values=True))).__dict__
                except ValidationError:  # FastAPI says what is wrong, as on every route
                    await self.fallback(scope, replay, send)
                    return
                if len(raw_query) <= QUERY_KEPT_BYTES:  # (a long one would be kept in full)
                    if len(self.queries) >= QUERIES_KEPT:
                        self.queries.clear()
                    self.queries[raw_query] = values
            kwargs.update(values)
        if self.segments is not None:
            kwargs.update(scope["path_params"])  # the edge's match (HttpEdge)
        request = Request(scope, replay)
        kwargs[self.request_name] = request
        try:
            for param, dependency in self.dependencies:
                kwargs[param] = await dependency(request)
            response = await self.endpoint(**kwargs)
        except Exception as exc:
            response = problem_of(exc, scope["method"], scope["path"])
        await response(scope, replay, send)


def _scalar(annotation: Any) -> bool:
    """Whether a query parameter is one value (not a list, which FastAPI reads from repeated
    keys): what a direct route validates itself."""
    args = get_args(annotation)
    if get_origin(annotation) in (list, tuple, set, frozenset):
        return False
    return all(_scalar(a) for a in args) if args and get_origin(annotation) is not Literal \
        else True


def _segments_may_meet(template: tuple[tuple[str | None, str | None], ...],
                       path: str, prefix_only: bool = False) -> bool:
    """Whether a request path matched by ``template`` (a direct route's segments) might
    also be matched by a route of path ``path`` (a mount's, when ``prefix_only``). Errs
    towards yes: a parameter of ``path`` other than a plain one meets anything."""
    theirs = path.rstrip("/").split("/") if prefix_only else path.split("/")
    if any(":path}" in part for part in theirs):
        return True
    if len(theirs) > len(template) or (len(theirs) < len(template) and not prefix_only):
        return False
    for (literal, _), part in zip(template, theirs, strict=False):
        if literal is not None and "{" not in part and part != literal:
            return False
    return True


def _all_routes(routes: Any, prefix: str = "", dependencies: bool = False
                ) -> Iterator[tuple[Any, str, bool]]:
    """Every route of ``routes`` with the prefix of the includes it is under, and whether
    one of those adds dependencies; included routers walked into."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            context = getattr(route, "include_context", None)
            yield from _all_routes(included.routes, prefix + getattr(context, "prefix", ""),
                                   dependencies or bool(getattr(context, "dependencies", None)))
        else:
            yield route, prefix, dependencies


def direct_routes(app: Any, fallback: Callable[..., Awaitable[None]],
                  fallback_headers: Callable[[str], Collection[bytes]] | None = None
                  ) -> dict[tuple[str, str], DirectRoute]:
    """The app's routes marked :func:`direct`, compiled, by (method, path) (a templated
    path as declared, ``/carts/{cart_id}``). ``fallback_headers(path)``: the headers whose
    presence sends a request of that path to ``fallback`` (the middleware acting on them).

    A route is refused (TypeError) when another route of the app might take a request it
    matches (same method, a path that may meet it, or a mount): the edge does not try
    FastAPI's routes in order, so what it answers must be the only route that could."""
    from fastapi.routing import APIRoute
    from starlette.routing import Mount, WebSocketRoute

    every = list(_all_routes(app.routes))
    table: dict[tuple[str, str], DirectRoute] = {}
    for route, prefix, dependencies in every:
        if not (isinstance(route, APIRoute) and getattr(route.endpoint, _DIRECT, False)):
            continue
        original = inspect.unwrap(route.endpoint)
        where = f"{original.__module__}.{original.__qualname__}"
        if prefix or dependencies:
            raise TypeError(f"{where}: a direct route's router is included without a prefix "
                            "or dependencies")
        methods = set(route.methods or ())
        handler = DirectRoute(route, fallback,
                              fallback_headers(route.path) if fallback_headers else ())
        mine = tuple((part, None) for part in route.path.split("/")) \
            if handler.segments is None else handler.segments
        for other, other_prefix, _ in every:
            if other is route or isinstance(other, WebSocketRoute):
                continue
            path = other_prefix + getattr(other, "path", "")
            if isinstance(other, Mount):
                meets = _segments_may_meet(mine, path, prefix_only=True)
            elif hasattr(other, "path"):
                theirs = getattr(other, "methods", None)
                meets = (theirs is None or bool(set(theirs) & methods)) \
                    and _segments_may_meet(mine, path)
            else:
                meets = True  # a route of a kind not known here
            if meets:
                raise TypeError(f"{where}: a direct route is the only one that may take its "
                                f"requests, but {path or other!r} may take some of them too")
        for method in methods:
            table[(method, route.path)] = handler
    return table

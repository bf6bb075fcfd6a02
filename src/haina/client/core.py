"""The SDK's client: one ``httpx.Client``, retries and backoff, typed resources per module."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

from haina.client.oauth import OAuthApp, TokenSet

M = TypeVar("M", bound=BaseModel)
RETRYABLE = {429, 500, 502, 503, 504}


class HainaError(Exception):
    """A problem (RFC 9457) the API answered: match on ``slug`` (the end of ``type``)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.type = str(problem.get("type", ""))
        self.slug = self.type.rsplit("/", 1)[-1]
        self.title = str(problem.get("title", ""))
        self.detail = str(problem.get("detail", problem))
        super().__init__(f"{status} {self.slug}: {self.detail}")


class Haina:
    """A client for one credential: a staff token (``token=``) or an app's tokens at one
    merchant (``tokens=`` and ``oauth=``: refreshed when they expire, ``on_tokens`` is told
    of each new pair, which must be stored: the old refresh token stops working)."""

    def __init__(self, base_url: str, token: str | None = None, *,
                 tokens: TokenSet | None = None, oauth: OAuthApp | None = None,
                 on_tokens: Callable[[TokenSet], None] | None = None,
                 max_retries: int = 4, backoff: float = 0.25, max_wait: float = 30.0,
                 timeout: float = 30.0, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if (token is None) == (tokens is None):
            raise ValueError("give a staff token (token=) or an app's tokens (tokens=)")
        self._token, self._tokens, self._oauth, self._on_tokens = token, tokens, oauth, on_tokens
        self.max_retries, self.backoff, self.max_wait, self._sleep = (
            max_retries, backoff, max_wait, sleep)
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout,
                                  transport=transport)
        from haina.client import resources as r
        self.members = r.Members(self)
        self.data_requests = r.DataRequests(self)
        self.tiers = r.Tiers(self)
        self.products = r.Products(self)
        self.categories = r.Categories(self)
        self.inventory = r.Inventory(self)
        self.carts = r.Carts(self)
        self.orders = r.Orders(self)
        self.payments = r.Payments(self)
        self.ledger = r.Ledger(self)
        self.analytics = r.Analytics(self)
        self.coupons = r.Coupons(self)
        self.promotions = r.Promotions(self)
        self.webhooks = r.Webhooks(self)
        self.apps = r.Apps(self)
        self.events = r.Events(self)
        self.tenant = r.TenantApi(self)
        self.service_points = r.ServicePoints(self)
        self.bookings = r.Bookings(self)
        self.partnerships = r.Partnerships(self)
        self.search = r.Search(self)

    def __enter__(self) -> Haina:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------ transport

    def _bearer(self) -> str:
        if self._token is not None:
            return self._token
        assert self._tokens is not None
        if self._tokens.expired() and self._oauth and self._tokens.refresh_token:
            self._refresh()
        return self._tokens.access_token

    def _refresh(self) -> None:
        assert self._oauth is not None and self._tokens is not None
        assert self._tokens.refresh_token is not None
        self._tokens = self._oauth.refresh(self._tokens.refresh_token)
        if self._on_tokens:
            self._on_tokens(self._tokens)

    def request(self, method: str, path: str, *, json: Any = None,
                params: dict[str, Any] | None = None, files: Any = None,
                data: Any = None, idempotent: bool | None = None) -> httpx.Response:
        """Send one API call, retrying what is safe to retry; raises :class:`HainaError`."""
        headers: dict[str, str] = {}
        if method == "POST":
            headers["Idempotency-Key"] = str(uuid.uuid4())  # the same for every retry
        safe = idempotent if idempotent is not None else method in ("GET", "POST", "PUT",
                                                                    "DELETE")
        params = {k: v for k, v in (params or {}).items() if v is not None}
        refreshed = False
        attempt = 0
        while True:
            headers["Authorization"] = f"Bearer {self._bearer()}"
            try:
                r = self._http.request(method, path, json=json, params=params, files=files,
                                       data=data, headers=headers)
            except httpx.TransportError:
                if not safe or attempt >= self.max_retries:
                    raise
                self._sleep(self._delay(attempt))
                attempt += 1
                continue
            if r.status_code == 401 and self._oauth and self._tokens and not refreshed \
                    and self._tokens.refresh_token:
                self._refresh()  # expired early, or revoked: one fresh try
                refreshed = True
                continue
            in_use = r.status_code == 409 and "idempotency-key-in-use" in r.text
            if (r.status_code in RETRYABLE or in_use) and safe and attempt < self.max_retries:
                wait = self._delay(attempt)
                if r.status_code == 429:
                    wait = max(wait, float(r.headers.get("retry-after", "1")))
                self._sleep(min(wait, self.max_wait))
                attempt += 1
                continue
            if r.status_code >= 400:
                try:
                    problem = r.json()
                except ValueError:
                    problem = {"detail": r.text[:500]}
                raise HainaError(r.status_code, problem if isinstance(problem, dict)
                                 else {"detail": problem})
            return r

    def _delay(self, attempt: int) -> float:
        return float(self.backoff * (2 ** attempt) * (0.5 + random.random()))

    def call(self, model: Any, method: str, path: str, **kwargs: Any) -> Any:
        """``request`` then the answer as ``model`` (a Pydantic model or a type)."""
        r = self.request(method, path, **kwargs)
        if model is None or r.status_code == 204 or not r.content:
            return None
        return TypeAdapter(model).validate_python(r.json())

    def iterate(self, model: type[M], path: str, **params: Any) -> Iterator[M]:
        """Every item of a paginated list, page after page (lazily)."""
        cursor: str | None = None
        while True:
            page = self.request("GET", path, params={**params, "cursor": cursor}).json()
            for item in page["data"]:
                yield model.model_validate(item)
            cursor = page.get("next_cursor")
            if not page.get("has_more") or not cursor:
                return

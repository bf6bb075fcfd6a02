"""Problem details (RFC 9457) with stable ``type`` URIs, and their HTTP mapping.

A service raises :class:`Problem` (or a subclass); the API turns it into
``application/problem+json``. The ``type`` is ``https://haina.dev/problems/<slug>``; clients
match on the slug, which never changes once published.
"""

from __future__ import annotations

from typing import Any

PROBLEM_BASE = "https://haina.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str, *, status: int | None = None, slug: str | None = None,
                 title: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status
        if slug is not None:
            self.slug = slug
        if title is not None:
            self.title = title
        self.extra = extra

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug

    def to_dict(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status,
                                "detail": self.detail}
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class NotFound(Problem):
    status, slug, title = 404, "not-found", "Not found"


class Invalid(Problem):
    status, slug, title = 422, "validation-error", "Invalid request"


class Conflict(Problem):
    status, slug, title = 409, "conflict", "Conflict"


class OutOfStock(Conflict):
    slug, title = "out-of-stock", "Out of stock"


class InvalidState(Conflict):
    slug, title = "invalid-state", "Not allowed in the current state"


class Unauthorized(Problem):
    status, slug, title = 401, "unauthorized", "Unauthorized"


class Forbidden(Problem):
    status, slug, title = 403, "insufficient-scope", "Insufficient scope"


class PaymentFailed(Problem):
    status, slug, title = 402, "payment-failed", "Payment failed"


class IdempotencyMismatch(Problem):
    status, slug, title = 422, "idempotency-key-reused", "Idempotency key reused with another request"


class IdempotencyInProgress(Conflict):
    slug, title = "idempotency-key-in-use", "A request with this idempotency key is in progress"


def not_found(kind: str, ident: str) -> NotFound:
    return NotFound(f"no {kind} {ident!r}", slug=f"{kind.replace(' ', '-')}-not-found")

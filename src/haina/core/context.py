"""Who is calling: the tenant (merchant) and the scopes their credential carries."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from haina.core.errors import Forbidden

# what a scope grants access to ("<component>:read|write|*"); "settings" is the merchant's own
# settings (PUT /v1/tenant/settings); "storefront" the publishable keys of the buyer-facing API
COMPONENTS = ("members", "catalog", "inventory", "orders", "payments", "ledger", "events",
              "analytics", "marketing", "geo", "crossborder", "apps", "webhooks", "settings",
              "storefront")
# actions a component grants besides read, write and * (never implied by write):
# crossborder:identity reads buyers' ID numbers unmasked
EXTRA_ACTIONS = {"crossborder": ("identity",)}


@dataclass(frozen=True)
class Tenant:
    """The caller's merchant and granted scopes. Every query filters by ``tenant.id``."""

    id: str
    slug: str
    scopes: frozenset[str] = field(default_factory=lambda: frozenset({"*"}))
    currency: str = "CNY"
    token_id: str | None = None
    app_id: str | None = None
    # the merchant's settings (platform.schemas.TenantSettings) as loaded with the credential;
    # None: load them when needed
    settings: Any = field(default=None, compare=False, hash=False, repr=False)
    # the rate-limit plan of the credential (a key of the rate_limit_plans setting; None: none)
    rate_plan: str | None = field(default=None, compare=False)
    # the signed-in staff account behind the request (web pages), if any
    staff_id: str | None = None
    # the storefront (/store/v1): the publishable key of the request (its own rate-limit
    # bucket), and the signed-in buyer (a member; a bucket of their own too)
    publishable_key_id: str | None = None
    buyer_id: str | None = None

    def actor(self) -> tuple[str, str] | None:
        """Who acts, for the audit trail: an app, a staff account, a staff token, or on the
        storefront a signed-in buyer or a publishable key."""
        if self.buyer_id:
            return "buyer", self.buyer_id
        if self.publishable_key_id:
            return "storefront_key", self.publishable_key_id
        if self.app_id:
            return "app", self.app_id
        if self.staff_id:
            return "staff", self.staff_id
        if self.token_id:
            return "staff_token", self.token_id
        return None

    def allows(self, scope: str) -> bool:
        if "*" in self.scopes or scope in self.scopes:
            return True
        component, _, action = scope.partition(":")
        # write implies read; "component:*" grants every action on that component
        return f"{component}:*" in self.scopes or (
            action == "read" and f"{component}:write" in self.scopes)

    def require(self, scope: str) -> None:
        if not self.allows(scope):
            raise Forbidden(f"this credential lacks the scope {scope!r}", required_scope=scope)


# who acts in the current unit of work (set by the request's thread, read by record_event)
current_actor: ContextVar[tuple[str, str] | None] = ContextVar("haina_actor", default=None)


def parse_scopes(text: str) -> frozenset[str]:
    """``"members:read orders:write"`` (space or comma separated) → validated scope set."""
    scopes = frozenset(s for s in text.replace(",", " ").split() if s)
    if not scopes:
        raise ValueError("no scopes given; use \"*\" for all")
    for scope in scopes:
        if scope == "*":
            continue
        component, sep, action = scope.partition(":")
        if not sep or component not in COMPONENTS or \
                action not in ("read", "write", "*", *EXTRA_ACTIONS.get(component, ())):
            raise ValueError(f"unknown scope {scope!r}; scopes look like \"orders:write\" "
                             f"with a component among {', '.join(COMPONENTS)}")
    return scopes

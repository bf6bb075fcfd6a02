"""Uninstalling an app: the grant ends, every token of it is revoked, and the app's webhook
endpoints at the merchant are disabled (their pending deliveries fail), all in the caller's
transaction."""

from __future__ import annotations

from sqlalchemy.orm import Session

from haina.core.context import Tenant
from haina.platform import service as platform
from haina.platform.schemas import GrantOut
from haina.webhooks import service as webhooks


def uninstall(session: Session, tenant: Tenant, grant_id: str) -> GrantOut:
    grant = platform.uninstall(session, tenant, grant_id)
    webhooks.disable_app_endpoints(session, tenant.id, grant.app_id)
    return grant

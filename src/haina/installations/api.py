"""Installations API: a merchant uninstalls an app."""

from __future__ import annotations

from fastapi import Depends

from haina.core.context import Tenant
from haina.core.http import Router, SessionDep
from haina.installations import service
from haina.platform.auth import require
from haina.platform.schemas import GrantOut

router = Router(prefix="/v1", tags=["apps"])


@router.post("/app-grants/{grant_id}/uninstall", response_model=GrantOut,
             summary="Uninstall an app: its tokens are revoked and its webhook endpoints here "
                     "disabled, at once")
def post_uninstall(session: SessionDep, grant_id: str,
                   tenant: Tenant = Depends(require("apps:write"))) -> GrantOut:
    return service.uninstall(session, tenant, grant_id)

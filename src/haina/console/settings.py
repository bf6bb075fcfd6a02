"""The console's settings page (``haina.platform``): the merchant's settings as they stand, and
the shop's **time zone** (an IANA name), which owners change here. The zone decides where the
shop's days and weeks start: the dashboard's weeks, the orders filter's days and every date
and time the console shows. Unset, a CNY merchant's zone is Asia/Shanghai and any other's UTC
(``platform.schemas.time_zone_of``). Routes register on the console's router."""

from __future__ import annotations

import datetime as dt

from fastapi import Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from haina.console.web import Visit, _act, _back, _page, _t, _view, router
from haina.core.errors import Invalid
from haina.core.http import SessionDep
from haina.platform import service as platform
from haina.platform.schemas import TenantSettings, time_zone_of

# offered first in the form's list (any IANA name is taken)
COMMON_ZONES = ("Asia/Shanghai", "Asia/Hong_Kong", "Asia/Taipei", "Asia/Macau", "Asia/Tokyo",
                "Asia/Seoul", "Asia/Singapore", "Europe/London", "Europe/Paris",
                "America/New_York", "America/Los_Angeles", "Australia/Sydney", "UTC")


@router.get("/console/settings")
@_view
def settings_page(request: Request, session: SessionDep, v: Visit) -> Response:
    settings = platform.tenant_settings(session, v.tenant)
    zone = v.fmt.zone
    now = dt.datetime.now(zone)
    return _page(request, v, "console/settings.html", title=_t(v, "Settings"),
                 settings=settings, zone=str(zone), now=now, zones=COMMON_ZONES,
                 default_zone=str(time_zone_of(None, v.tenant.currency)))


@router.post("/console/settings/time-zone")
async def change_time_zone(request: Request) -> Response:
    def work(session: Session, v: Visit, form: dict[str, str]) -> Response:
        name = form.get("time_zone", "").strip() or None
        current = platform.tenant_settings(session, v.tenant)
        try:
            changed = TenantSettings.model_validate({**current.model_dump(), "time_zone": name})
        except ValidationError as exc:
            raise Invalid("; ".join(e["msg"] for e in exc.errors()),
                          slug="validation-error") from None
        platform.update_tenant_settings(session, v.tenant, changed)
        shown = str(time_zone_of(changed, v.tenant.currency))
        return _back("/console/settings", settings_saved=shown)

    return await _act(request, "change_settings", work)

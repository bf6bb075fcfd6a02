"""The console's staff accounts (``haina.platform``): the people who sign in for the shop,
with their role, when they joined, a lock after failed sign-ins and whether they are disabled.
Owners **invite** someone (an email and a role; a first password is made and shown once, on
the answering page, for the owner to hand over), **change a role** and **disable** or
**enable** an account (its sessions end at once); an owner never changes their own account,
so a shop always keeps the owner who is acting. Staff and read-only accounts see the list and
change nothing. Each change is an event (``staff.created``, ``staff.role_changed``,
``staff.disabled``, ``staff.enabled``) with the owner as its actor: the audit trail. Routes
register on the console's router."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from haina.console.web import Visit, _act, _back, _page, _t, _view, _w, router
from haina.core.http import SessionDep
from haina.platform import service as platform


@router.get("/console/staff")
@_view
def staff_list(request: Request, session: SessionDep, v: Visit) -> Response:
    return _page(request, v, "console/staff.html", title=_t(v, "Staff"),
                 accounts=platform.list_staff(session, v.tenant), roles=platform.STAFF_ROLES)


@router.post("/console/staff")
async def invite(request: Request) -> Response:
    def work(session: Session, v: Visit, form: dict[str, str]) -> Response:
        account, password = platform.invite_staff(session, v.tenant, form.get("email", ""),
                                                  form.get("role", ""))
        return _page(request, v, "console/staff_invited.html", 201,
                     title=_t(v, "Account created"), account=account, password=password)

    return await _act(request, "manage_staff", work)


@router.post("/console/staff/{staff_id}/role")
async def change_role(request: Request, staff_id: str) -> Response:
    def work(session: Session, v: Visit, form: dict[str, str]) -> Response:
        account = platform.change_staff_role(session, v.tenant, staff_id, form.get("role", ""))
        return _back("/console/staff", role_changed=f"{account.email}: {_w(v, account.role)}")

    return await _act(request, "manage_staff", work)


@router.post("/console/staff/{staff_id}/state")
async def change_state(request: Request, staff_id: str) -> Response:
    def work(session: Session, v: Visit, form: dict[str, str]) -> Response:
        off = form.get("disabled") == "true"
        account = platform.disable_staff(session, v.tenant, staff_id, off)
        return _back("/console/staff",
                     **{"staff_disabled" if off else "staff_enabled": account.email})

    return await _act(request, "manage_staff", work)

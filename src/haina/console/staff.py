"""The console's staff accounts (``haina.platform``): the people who sign in for the shop,
with their role, when they joined, a lock after failed sign-ins and whether they are disabled.
Owners **invite** someone (an email and a role; a first password is made and shown once, on
the answering page, for the owner to hand over), **change a role** and **disable** or
**enable** an account (its sessions end at once) and **reset a password** (a new one made and
shown once, as at the invitation); an owner never changes their own account that way,
so a shop always keeps the owner who is acting. Staff and read-only accounts see the list and
change nothing there. Every signed-in account, read-only too, **changes its own password**
(the current one, the new one twice; its other sessions end). Each change is an event
(``staff.created``, ``staff.role_changed``, ``staff.disabled``, ``staff.enabled``,
``staff.password_reset``, ``staff.password_changed``) with the acting account as its actor:
the audit trail. Routes register on the console's router.

Why an owner's reset makes the password rather than letting the owner type one: a made one is
always strong (96 random bits), is never a password the owner also uses elsewhere, is never
typed into a form (no autofill, no history) and is shown once on a page that is not kept
(``no-store``) nor linked; the person changes it after signing in."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from haina.console.web import Visit, _act, _back, _page, _refusal, _t, _view, _w, router
from haina.core.errors import Problem
from haina.core.http import SessionDep
from haina.platform import service as platform


@router.get("/console/staff")
@_view
def staff_list(request: Request, session: SessionDep, v: Visit) -> Response:
    return _page(request, v, "console/staff.html", title=_t(v, "Staff"),
                 accounts=platform.list_staff(session, v.tenant), roles=platform.STAFF_ROLES,
                 min_password=platform.STAFF_MIN_PASSWORD)


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


@router.post("/console/staff/{staff_id}/password")
async def reset_password(request: Request, staff_id: str) -> Response:
    def work(session: Session, v: Visit, form: dict[str, str]) -> Response:
        account, password = platform.reset_staff_password(session, v.tenant, staff_id)
        return _page(request, v, "console/staff_password.html", title=_t(v, "Password reset"),
                     account=account, password=password)

    return await _act(request, "manage_staff", work)


@router.post("/console/password")
async def change_own_password(request: Request) -> Response:
    """The signed-in account's own password: the current one, the new one twice. A wrong
    current password is answered with a page, not an exception, so the failure it counts
    toward the lock is kept (the unit of work commits)."""
    def work(session: Session, v: Visit, form: dict[str, str]) -> Response:
        new = form.get("new_password", "")
        if new != form.get("new_password_again", ""):
            return _refusal(request, 422, _t(v, "This could not be done"),
                            _t(v, "The two new passwords differ. Nothing was changed."), v)
        try:
            platform.change_own_password(session, v.staff.id,
                                         request.cookies.get(platform.SESSION_COOKIE),
                                         form.get("current_password", ""), new)
        except Problem as exc:
            reasons = {
                "wrong-password": _t(v, "The current password is wrong. Nothing was changed."),
                "account-locked": _t(v, "Too many wrong passwords: try again in a quarter of "
                                        "an hour. Nothing was changed."),
                "weak-password": _t(v, "The new password must be %(min)s to %(max)s "
                                       "characters. Nothing was changed.")
                % {"min": platform.STAFF_MIN_PASSWORD, "max": platform.STAFF_MAX_PASSWORD},
                "same-password": _t(v, "The new password is the current one. Nothing was "
                                       "changed.")}
            return _refusal(request, exc.status, _t(v, "This could not be done"),
                            reasons.get(exc.slug, exc.detail), v)
        return _back("/console/staff", password_changed=v.staff.email)

    return await _act(request, "change_own_password", work)

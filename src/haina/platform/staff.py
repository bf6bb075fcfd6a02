"""Staff accounts: the people who sign in to Haina's web pages for a merchant (the OAuth
consent screen now, the console later).

Passwords are argon2id hashes (argon2-cffi's defaults, RFC 9106's second recommended
profile). A run of failed sign-ins locks the account for a while; the lock is counted per
account, so guessing one account's password cannot lock another's. A signed-in browser holds
a random session token in an HttpOnly cookie; the server keeps its SHA-256 and the session's
CSRF token, which every form posted in the session must carry.

The test suite sets ``HAINA_PASSWORD_HASHING=cheapest-for-tests`` (tests/conftest.py): argon2's
cheapest parameters (8 KiB, one pass), so that its hundreds of sign-ins do not spend minutes
hashing. Any other value, or none, is the production profile. A hash records its own
parameters, so an account made under one profile still signs in under the other.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import os
import re
import secrets

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from haina.core.db import add_unique, rowcount, utcnow
from haina.core.errors import Conflict, Invalid, Problem
from haina.core.events import record_event
from haina.core.ids import new_id
from haina.platform.models import StaffAccount, StaffSession, TenantRow
from haina.platform.schemas import StaffOut

ROLES = ("owner", "staff", "read-only")
# the browser's cookies: the signed-in session, and the sign-in form's double-submit CSRF token
SESSION_COOKIE = "haina_session"
LOGIN_CSRF_COOKIE = "haina_login_csrf"
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s.]{2,63}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # argon2 takes any length; an unbounded one is a denial-of-service lever
LOCK_AFTER = 5  # failed sign-ins in a row
LOCK_FOR = dt.timedelta(minutes=15)
SESSION_FOR = dt.timedelta(hours=12)

_hasher = (PasswordHasher.from_parameters(profiles.CHEAPEST)
           if os.environ.get("HAINA_PASSWORD_HASHING") == "cheapest-for-tests"
           else PasswordHasher())


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so that an unknown email takes as long as a
    wrong password (no account enumeration by timing). Made on first use, not at import (an
    argon2 hash costs every process that imports the platform ~50 ms)."""
    return _hasher.hash(secrets.token_urlsafe(16))


class LoginRefused(Problem):
    status, slug, title = 401, "login-failed", "Sign-in failed"


class AccountLocked(Problem):
    status, slug, title = 429, "account-locked", "Too many failed sign-ins"


def _out(row: StaffAccount, slug: str) -> StaffOut:
    return StaffOut(id=row.id, tenant_id=row.tenant_id, tenant_slug=slug, email=row.email,
                    role=row.role, created_at=row.created_at,
                    locked_until=row.locked_until if row.locked_until
                    and row.locked_until > utcnow() else None, disabled_at=row.disabled_at)


def create_staff(session: Session, tenant_slug: str, email: str, password: str,
                 role: str = "owner") -> StaffOut:
    tenant = session.scalar(select(TenantRow).where(TenantRow.slug == tenant_slug))
    if tenant is None:
        raise Invalid(f"no tenant {tenant_slug!r}", slug="tenant-not-found", status=404)
    email = email.strip().lower()
    if not EMAIL.match(email):
        raise Invalid(f"{email!r} is not an email address", slug="invalid-email")
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}, not {role!r}",
                      slug="invalid-role")
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise Invalid(f"the password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters",
                      slug="weak-password")
    row = StaffAccount(id=new_id("staff"), tenant_id=tenant.id, email=email,
                       password_hash=_hasher.hash(password), role=role, failed_logins=0,
                       created_at=utcnow())
    add_unique(session, row, lambda: Conflict(
        f"a staff account with email {email!r} already exists", slug="staff-exists"))
    record_event(session, tenant.id, "staff.created", row.id, {"email": email, "role": role})
    return _out(row, tenant.slug)


def _count_failure(session: Session, row: StaffAccount, now: dt.datetime) -> None:
    """A wrong password: one more failure, and a lock (with its event) at ``LOCK_AFTER``."""
    row.failed_logins += 1
    if row.failed_logins >= LOCK_AFTER:
        row.locked_until, row.failed_logins = now + LOCK_FOR, 0
        record_event(session, row.tenant_id, "staff.locked", row.id,
                     {"until": row.locked_until.isoformat()})
    session.flush()


def authenticate_staff(session: Session, email: str, password: str,
                       now: dt.datetime | None = None) -> StaffOut:
    """The account whose email and password these are; otherwise 401 ``login-failed`` (the
    same answer for an unknown email and a wrong password), or 429 ``account-locked``.

    The failure count is written by the caller's unit of work, which commits a refused
    sign-in too (the web page answers with an error page, not an exception)."""
    now = now or utcnow()
    email = email.strip().lower()
    if len(password) > MAX_PASSWORD:
        raise LoginRefused("wrong email or password")
    row = session.scalar(select(StaffAccount).where(StaffAccount.email == email)
                         .with_for_update())
    if row is None or row.disabled_at is not None:
        try:
            _hasher.verify(_dummy_hash(), password)
        except VerificationError:
            pass
        raise LoginRefused("wrong email or password")
    if row.locked_until is not None and row.locked_until > now:
        raise AccountLocked("too many failed sign-ins; try again after "
                            f"{row.locked_until:%H:%M} UTC",
                            retry_after=int((row.locked_until - now).total_seconds()) + 1)
    try:
        _hasher.verify(row.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        _count_failure(session, row, now)
        raise LoginRefused("wrong email or password")
    row.failed_logins, row.locked_until = 0, None
    if _hasher.check_needs_rehash(row.password_hash):
        row.password_hash = _hasher.hash(password)
    slug = session.scalar(select(TenantRow.slug).where(TenantRow.id == row.tenant_id))
    session.flush()
    return _out(row, slug or "")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(session: Session, staff_id: str, now: dt.datetime | None = None) -> tuple[str, str]:
    """A new signed-in session: (cookie token, CSRF token)."""
    now = now or utcnow()
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session.add(StaffSession(id=_digest(token), staff_id=staff_id, csrf_token=csrf,
                             created_at=now, expires_at=now + SESSION_FOR))
    session.flush()
    return token, csrf


def session_staff(session: Session, token: str | None,
                  now: dt.datetime | None = None) -> tuple[StaffOut, str] | None:
    """The signed-in account of a session cookie and the session's CSRF token, or None."""
    if not token or len(token) > 200:
        return None
    now = now or utcnow()
    row = session.execute(
        select(StaffAccount, StaffSession.csrf_token, TenantRow.slug)
        .join(StaffSession, StaffSession.staff_id == StaffAccount.id)
        .join(TenantRow, TenantRow.id == StaffAccount.tenant_id)
        .where(StaffSession.id == _digest(token), StaffSession.expires_at > now,
               StaffAccount.disabled_at.is_(None))).first()
    if row is None:
        return None
    return _out(row[0], row[2]), row[1]


def close_session(session: Session, token: str | None) -> None:
    if token:
        session.execute(delete(StaffSession).where(StaffSession.id == _digest(token)))


def purge_sessions(session: Session, now: dt.datetime | None = None) -> int:
    """Delete expired sessions (the worker's housekeeping)."""
    return rowcount(session.execute(delete(StaffSession).where(
        StaffSession.expires_at <= (now or utcnow()))))


def _check_length(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise Invalid(f"the password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters",
                      slug="weak-password")


def _replace_password(session: Session, row: StaffAccount, password: str,
                      keep: str | None = None) -> None:
    """A new hash, the lock lifted, and every session of the account ended (but ``keep``, the
    digest of the session that made the change)."""
    row.password_hash, row.failed_logins, row.locked_until = _hasher.hash(password), 0, None
    ended = delete(StaffSession).where(StaffSession.staff_id == row.id)
    if keep is not None:
        ended = ended.where(StaffSession.id != keep)
    session.execute(ended)


def set_password(session: Session, email: str, password: str,
                 tenant_slug: str | None = None, event: bool = False) -> StaffOut:
    """Replace an account's password (and lift a lock; its sessions end): the operator's
    reset. With ``tenant_slug``, the account must be that merchant's (another's is not
    found); with ``event``, a ``staff.password_reset`` event (by the operator) is written."""
    _check_length(password)
    email = email.strip().lower()
    row = session.scalar(select(StaffAccount).where(StaffAccount.email == email)
                         .with_for_update())
    slug = None if row is None else session.scalar(
        select(TenantRow.slug).where(TenantRow.id == row.tenant_id))
    if row is None or (tenant_slug is not None and slug != tenant_slug):
        where = f" at {tenant_slug!r}" if tenant_slug is not None else ""
        raise Invalid(f"no staff account {email!r}{where}", slug="staff-not-found", status=404)
    _replace_password(session, row, password)
    if event:
        record_event(session, row.tenant_id, "staff.password_reset", row.id,
                     {"email": row.email, "by": "operator"})
    session.flush()
    return _out(row, slug or "")


class WrongPassword(Problem):
    status, slug, title = 422, "wrong-password", "Wrong password"


def change_own_password(session: Session, staff_id: str, session_token: str | None,
                        current: str, new: str, now: dt.datetime | None = None) -> StaffOut:
    """A signed-in account changes its own password: the current one checked (a wrong one
    counts toward the lock, as a failed sign-in does, so a borrowed session cannot guess it
    for long), the new one the same length rule; the account's other sessions end, the one
    making the change stays signed in. A ``staff.password_changed`` event."""
    now = now or utcnow()
    row = session.scalar(select(StaffAccount).where(StaffAccount.id == staff_id)
                         .with_for_update())
    if row is None or row.disabled_at is not None:
        raise StaffNotFound(f"no staff account {staff_id!r}")
    if row.locked_until is not None and row.locked_until > now:
        raise AccountLocked("too many wrong passwords; try again after "
                            f"{row.locked_until:%H:%M} UTC",
                            retry_after=int((row.locked_until - now).total_seconds()) + 1)
    try:
        if len(current) > MAX_PASSWORD:
            raise VerificationError("too long")
        _hasher.verify(row.password_hash, current)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        _count_failure(session, row, now)
        raise WrongPassword("the current password is wrong") from None
    _check_length(new)
    if secrets.compare_digest(new.encode(), current.encode()):
        raise Invalid("the new password is the current one", slug="same-password")
    _replace_password(session, row, new, keep=_digest(session_token) if session_token else None)
    record_event(session, row.tenant_id, "staff.password_changed", row.id, {"email": row.email})
    slug = session.scalar(select(TenantRow.slug).where(TenantRow.id == row.tenant_id))
    session.flush()
    return _out(row, slug or "")


# ---------------------------------------------------------------- a merchant's accounts
# (the console's staff page: an owner invites, changes roles, disables and enables)

def list_staff(session: Session, tenant_id: str, slug: str) -> list[StaffOut]:
    """The merchant's accounts, oldest first (a merchant has a handful)."""
    rows = session.scalars(select(StaffAccount).where(StaffAccount.tenant_id == tenant_id)
                           .order_by(StaffAccount.created_at, StaffAccount.id)).all()
    return [_out(row, slug) for row in rows]


class StaffNotFound(Problem):
    status, slug, title = 404, "staff-not-found", "Not found"


def _account(session: Session, tenant_id: str, staff_id: str) -> StaffAccount:
    """The merchant's account (another merchant's is not found, as an unknown id)."""
    row = session.scalar(select(StaffAccount).where(
        StaffAccount.id == staff_id, StaffAccount.tenant_id == tenant_id).with_for_update())
    if row is None:
        raise StaffNotFound(f"no staff account {staff_id!r}")
    return row


def _not_oneself(row: StaffAccount, by: str | None) -> None:
    """An owner changes others' accounts, never their own: so the merchant always keeps the
    owner who is acting (no shop is left without one)."""
    if by is not None and row.id == by:
        raise Invalid("you cannot change your own account; ask another owner",
                      slug="own-account", status=409)


def change_role(session: Session, tenant_id: str, slug: str, staff_id: str, role: str,
                by: str | None) -> StaffOut:
    """Give an account another role (its open sessions keep working with the new role)."""
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}, not {role!r}",
                      slug="invalid-role")
    row = _account(session, tenant_id, staff_id)
    _not_oneself(row, by)
    if row.role != role:
        before, row.role = row.role, role
        record_event(session, tenant_id, "staff.role_changed", row.id,
                     {"email": row.email, "role": role, "previous_role": before})
        session.flush()
    return _out(row, slug)


def set_disabled(session: Session, tenant_id: str, slug: str, staff_id: str, disabled: bool,
                 by: str | None) -> StaffOut:
    """Disable an account (it can no longer sign in; its sessions end now) or enable it."""
    row = _account(session, tenant_id, staff_id)
    _not_oneself(row, by)
    if disabled and row.disabled_at is None:
        row.disabled_at = utcnow()
        session.execute(delete(StaffSession).where(StaffSession.staff_id == row.id))
        record_event(session, tenant_id, "staff.disabled", row.id, {"email": row.email})
    elif not disabled and row.disabled_at is not None:
        row.disabled_at, row.failed_logins, row.locked_until = None, 0, None
        record_event(session, tenant_id, "staff.enabled", row.id, {"email": row.email})
    session.flush()
    return _out(row, slug)


def reset_password(session: Session, tenant_id: str, slug: str, staff_id: str,
                   by: str | None) -> tuple[StaffOut, str]:
    """An owner resets another account's password: a new one is made here and returned, to
    be shown once and handed over (never chosen by the owner: always strong, never one the
    owner uses elsewhere, never typed into a form). The lock is lifted, every session of the
    account ends. A ``staff.password_reset`` event (never with the password)."""
    row = _account(session, tenant_id, staff_id)
    _not_oneself(row, by)
    password = secrets.token_urlsafe(12)
    _replace_password(session, row, password)
    record_event(session, tenant_id, "staff.password_reset", row.id,
                 {"email": row.email, "by": "owner"})
    session.flush()
    return _out(row, slug), password

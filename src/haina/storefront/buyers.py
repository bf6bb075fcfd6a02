"""Buyers sign in by phone: a one-time code, then a session of two tokens.

Codes: 6 digits, valid 5 minutes, 5 wrong tries end a code; a phone may ask for a new code
once a minute and 5 times an hour. A code is kept as a salted SHA-256 only (the sandbox inbox
of a sandbox key keeps the code too). A 6-digit code's hash can be reversed by anyone who
reads the table, in a moment: what protects a code is its short life and its few tries, so a
slow KDF would add CPU and no safety. The code reaches the buyer through the outbox event
``storefront.sign_in_code_requested``, which the merchant's SMS app subscribes to; it is
never logged. The code in that event is for the SMS app alone (``core.events.conceal``):
``GET /v1/events`` shows ``[redacted]`` in its place, and the stored payload loses it once the
event is delivered (the webhook dispatcher), the code used, or expired (:func:`retire_sign_ins`,
the worker's pass); a replayed delivery sends ``[redacted]``.

Sessions: an access token (``bst_…``, 15 minutes) and a refresh token (``bsr_…``, 30 days)
that rotates on use; both 256 random bits, kept as SHA-256. A session belongs to the
publishable key it was opened with. A spent refresh token presented again is taken as theft
(RFC 9700 §4.14.2): the session, every token descending from the sign-in, ends.

Retention (:func:`retire_sign_ins`, every worker pass): codes are deleted a day after they
were sent (the hourly throttle needs the last hour's; the day is for the merchant's abuse
review), and their events lose the phone too; sessions are deleted once their refresh token
has expired, with their spent refresh tokens.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from haina.core import credentials
from haina.core.context import Tenant
from haina.core.db import rowcount, utcnow
from haina.core.errors import Conflict, Problem, Unauthorized
from haina.core.events import REDACTED, conceal, events_about, record_event, redact_concealed
from haina.core.ids import new_id
from haina.core.personal import export_rows, needles
from haina.members import service as members
from haina.members.schemas import IdentityIn, MemberCreate
from haina.storefront.keys import Shop
from haina.storefront.models import BuyerSession, SignInCode, SpentRefreshToken
from haina.storefront.schemas import (
    BuyerSessionOut,
    CodeRequested,
    InboxMessage,
    InboxOut,
)
from haina.webhooks import service as webhooks

CODE_MINUTES = 5
MAX_ATTEMPTS = 5
RESEND_SECONDS = 60
CODES_PER_HOUR = 5
ACCESS_MINUTES = 15
REFRESH_DAYS = 30
ACCESS_PREFIX, REFRESH_PREFIX = "bst_", "bsr_"
INBOX_SIZE = 20
CODE_RETENTION = dt.timedelta(days=1)
CODE_EVENT = "storefront.sign_in_code_requested"
conceal(CODE_EVENT, "code")  # the SMS app's alone


class CodeThrottled(Problem):
    status, slug, title = 429, "code-throttled", "Too many codes"


class CodeRejected(Problem):
    status, slug, title = 401, "code-invalid", "Wrong or expired code"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _code_hash(salt: str, code: str) -> str:
    return _digest(f"{salt}:{code}")


def request_code(session: Session, shop: Shop, phone: str,
                 now: dt.datetime | None = None) -> CodeRequested:
    """Send a new code to ``phone`` (through the outbox); 429 ``code-throttled`` when the
    phone asked less than a minute ago or 5 times in the last hour."""
    now = now or utcnow()
    tenant = shop
    recent = session.execute(select(func.count(), func.max(SignInCode.created_at)).where(
        SignInCode.tenant_id == tenant.id, SignInCode.phone == phone,
        SignInCode.created_at > now - dt.timedelta(hours=1))).one()
    count, last = recent
    if last is not None and last > now - dt.timedelta(seconds=RESEND_SECONDS):
        wait = RESEND_SECONDS - int((now - last).total_seconds())
        raise CodeThrottled(f"a code was sent to this phone less than {RESEND_SECONDS} s ago; "
                            f"ask again in {wait} s", retry_after=max(1, wait))
    if count >= CODES_PER_HOUR:
        raise CodeThrottled(f"{CODES_PER_HOUR} codes were sent to this phone in the last hour; "
                            "try again later", retry_after=3600)
    code = f"{secrets.randbelow(10 ** 6):06d}"
    salt = secrets.token_hex(16)
    expires = now + dt.timedelta(minutes=CODE_MINUTES)
    row = SignInCode(id=new_id("sign_in_code"), tenant_id=tenant.id, key_id=shop.key_id,
                     phone=phone, code_hash=_code_hash(salt, code), salt=salt,
                     sandbox_code=code if shop.sandbox else None, attempts=0, created_at=now,
                     expires_at=expires)
    session.add(row)
    session.flush()
    # the SMS app's message: the only place the code goes (never a log line)
    record_event(session, tenant.id, CODE_EVENT, row.id,
                 {"phone": phone, "code": code, "expires_at": expires.isoformat(),
                  "publishable_key_id": shop.key_id, "channel": shop.channel,
                  "sandbox": shop.sandbox})
    return CodeRequested(phone=phone, expires_in=CODE_MINUTES * 60,
                         resend_after=RESEND_SECONDS)


@dataclass(frozen=True)
class Verified:
    """The outcome of a verification: a session, or the problem to answer. A wrong code is
    answered, not raised, so that the request's unit of work commits the spent attempt."""

    session: BuyerSessionOut | None = None
    problem: Problem | None = None


def verify_code(session: Session, shop: Shop, phone: str, code: str,
                now: dt.datetime | None = None) -> Verified:
    """Check the phone's latest code; right → the buyer's member (found by the phone
    identity, or made) and a new session. Every wrong try counts; the 5th ends the code."""
    now = now or utcnow()
    tenant = shop
    row = session.scalars(select(SignInCode).where(
        SignInCode.tenant_id == tenant.id, SignInCode.phone == phone)
        .order_by(SignInCode.created_at.desc(), SignInCode.id.desc()).limit(1)
        .with_for_update()).first()
    if row is None or row.used_at is not None or row.expires_at <= now:
        return Verified(problem=CodeRejected("no live code for this phone: ask for a new one",
                                             slug="code-expired"))
    if row.attempts >= MAX_ATTEMPTS:
        return Verified(problem=CodeRejected(f"{MAX_ATTEMPTS} wrong codes: ask for a new one",
                                             slug="code-attempts-exhausted"))
    if not hmac.compare_digest(row.code_hash, _code_hash(row.salt, code)):
        row.attempts += 1
        session.flush()
        left = MAX_ATTEMPTS - row.attempts
        return Verified(problem=CodeRejected(f"wrong code; {left} tries left",
                                             attempts_left=left))
    row.used_at = now
    _redact_code_events(session, tenant.id, [row], now)
    member_id = _member_for_phone(session, shop, phone)
    return Verified(session=open_session(session, shop, member_id, now))


def _member_for_phone(session: Session, shop: Shop, phone: str) -> str:
    """The member holding the phone identity, or a new member with it (the channel named)."""
    tenant = shop
    try:
        return members.find_member_by_identity(session, tenant, "phone", phone).id
    except Problem as exc:
        if exc.status != 404:
            raise
    identity = IdentityIn(kind="phone", value=phone, channel=f"storefront:{shop.channel}")
    try:
        return members.create_member(session, tenant, MemberCreate(identities=[identity])).id
    except Conflict:  # taken at the same moment by a concurrent sign-in: that member
        return members.find_member_by_identity(session, tenant, "phone", phone).id


def open_session(session: Session, shop: Shop, member_id: str,
                 now: dt.datetime | None = None) -> BuyerSessionOut:
    now = now or utcnow()
    access = ACCESS_PREFIX + secrets.token_urlsafe(32)
    refresh = REFRESH_PREFIX + secrets.token_urlsafe(32)
    row = BuyerSession(id=new_id("buyer_session"), tenant_id=shop.id, key_id=shop.key_id,
                       member_id=member_id, access_hash=_digest(access),
                       refresh_hash=_digest(refresh),
                       access_expires_at=now + dt.timedelta(minutes=ACCESS_MINUTES),
                       refresh_expires_at=now + dt.timedelta(days=REFRESH_DAYS), created_at=now)
    session.add(row)
    session.flush()
    return _session_out(row, access, refresh, now)


def _session_out(row: BuyerSession, access: str, refresh: str,
                 now: dt.datetime) -> BuyerSessionOut:
    return BuyerSessionOut(
        access_token=access, refresh_token=refresh, member_id=row.member_id,
        expires_in=int((row.access_expires_at - now).total_seconds()),
        refresh_expires_in=int((row.refresh_expires_at - now).total_seconds()))


def refresh_session(session: Session, shop: Shop, refresh_token: str,
                    now: dt.datetime | None = None) -> Verified:
    """New tokens for a refresh token (which is then spent); a problem (401) if it is
    unknown, expired, revoked, or another key's. A spent one presented again ends its session
    (``refresh-token-reused``): answered, not raised, so that the revocation commits."""
    now = now or utcnow()
    digest = _digest(refresh_token)
    row = session.scalar(select(BuyerSession).where(
        BuyerSession.tenant_id == shop.id,
        BuyerSession.refresh_hash == digest).with_for_update())
    if row is None:
        return Verified(problem=_reused(session, shop, digest, now))
    if row.revoked_at is not None or row.refresh_expires_at <= now or row.key_id != shop.key_id:
        return Verified(problem=Unauthorized(
            "unknown, spent or expired refresh token: sign in again",
            slug="invalid-refresh-token"))
    access = ACCESS_PREFIX + secrets.token_urlsafe(32)
    refresh = REFRESH_PREFIX + secrets.token_urlsafe(32)
    session.add(SpentRefreshToken(id=digest, tenant_id=shop.id, session_id=row.id,
                                  spent_at=now))
    row.access_hash, row.refresh_hash = _digest(access), _digest(refresh)
    row.access_expires_at = now + dt.timedelta(minutes=ACCESS_MINUTES)
    session.flush()
    credentials.changed(session)
    return Verified(session=_session_out(row, access, refresh, now))


def _reused(session: Session, shop: Shop, digest: str, now: dt.datetime) -> Problem:
    """An unknown refresh token, or a spent one: then its whole session ends (whoever holds
    the current tokens, the buyer or a thief, signs in again)."""
    spent = session.scalar(select(SpentRefreshToken.session_id).where(
        SpentRefreshToken.tenant_id == shop.id, SpentRefreshToken.id == digest))
    if spent is None:
        return Unauthorized("unknown, spent or expired refresh token: sign in again",
                            slug="invalid-refresh-token")
    session.execute(update(BuyerSession).where(
        BuyerSession.tenant_id == shop.id, BuyerSession.id == spent,
        BuyerSession.revoked_at.is_(None)).values(revoked_at=now))
    credentials.changed(session)
    return Unauthorized("this refresh token was already used: the session is ended, as it may "
                        "have been stolen; sign in again", slug="refresh-token-reused")


def sign_out(session: Session, shop: Shop, member_id: str, access_token: str) -> None:
    session.execute(update(BuyerSession).where(
        BuyerSession.tenant_id == shop.id, BuyerSession.member_id == member_id,
        BuyerSession.access_hash == _digest(access_token)).values(revoked_at=utcnow()))
    credentials.changed(session)


def end_sessions_of_key(session: Session, tenant: Tenant, key_id: str) -> None:
    session.execute(update(BuyerSession).where(
        BuyerSession.tenant_id == tenant.id, BuyerSession.key_id == key_id,
        BuyerSession.revoked_at.is_(None)).values(revoked_at=utcnow()))
    credentials.changed(session)


def sandbox_inbox(session: Session, shop: Tenant) -> InboxOut:
    """The latest codes sent through the merchant's sandbox keys (only a sandbox key may
    read it on ``/store/v1``: the route checks; the console shows it to staff)."""
    rows = session.scalars(select(SignInCode).where(
        SignInCode.tenant_id == shop.id, SignInCode.sandbox_code.is_not(None))
        .order_by(SignInCode.created_at.desc(), SignInCode.id.desc()).limit(INBOX_SIZE))
    return InboxOut(data=[InboxMessage(phone=r.phone, code=r.sandbox_code or "",
                                       created_at=r.created_at, expires_at=r.expires_at,
                                       used=r.used_at is not None) for r in rows])


# ------------------------------------------------------------------ lookup (every request)

_cache: dict[tuple[str, str], tuple[float, str | None]] = {}
_lock = threading.Lock()


def forget_cached_buyers() -> None:
    with _lock:
        _cache.clear()


credentials.register(forget_cached_buyers)


def cached_buyer(shop: Shop, access_token: str, ttl: float) -> str | None:
    """The member of a live access token verified in the last ``ttl`` seconds, without the
    database (None: not known, look it up): the request's dependency asks this first, on the
    event loop, and hops to a thread for :func:`authenticate_buyer` only when it is None."""
    with _lock:
        hit = _cache.get((shop.key_id, access_token))
    if hit is not None and time.monotonic() - hit[0] <= ttl and hit[1] is not None:
        return hit[1]
    return None


def authenticate_buyer(session: Session, shop: Shop, access_token: str, ttl: float,
                       now: dt.datetime | None = None) -> str:
    """The member of a live access token opened with this key (401 otherwise)."""
    known = cached_buyer(shop, access_token, ttl)
    if known is not None:
        return known
    cache_key = (shop.key_id, access_token)
    now = now or utcnow()
    row = session.execute(select(BuyerSession.member_id, BuyerSession.key_id,
                                 BuyerSession.revoked_at, BuyerSession.access_expires_at).where(
        BuyerSession.tenant_id == shop.id,
        BuyerSession.access_hash == _digest(access_token))).first()
    if row is None or row.revoked_at is not None or row.access_expires_at <= now \
            or row.key_id != shop.key_id:
        raise Unauthorized("unknown, expired or signed-out buyer token: refresh it or sign in",
                           slug="invalid-buyer-token")
    if ttl > 0:
        with _lock:
            if len(_cache) > 10_000:
                _cache.clear()
            _cache[cache_key] = (time.monotonic(), row.member_id)
    return str(row.member_id)


# ------------------------------------------------------------------ retention (the worker)

def _redact_code_events(session: Session, tenant_id: str, rows: Sequence[SignInCode],
                        now: dt.datetime, extra: tuple[str, ...] = ()) -> int:
    """Take the code (and ``extra`` fields) out of the codes' events and the logged answers
    of their deliveries."""
    codes = [r for r in rows if r.redacted_at is None or extra]
    if not codes:
        return 0
    taken = redact_concealed(session, tenant_id,
                             events_about(session, tenant_id, [r.id for r in codes]), extra)
    found = needles(v for vs in taken.values() for v in vs if v != REDACTED)
    webhooks.scrub_attempts(session, tenant_id, list(taken), found)
    for r in codes:
        r.redacted_at = r.redacted_at or now
    session.flush()
    return len(taken)


def retire_sign_ins(session: Session, now: dt.datetime, batch: int = 1000) -> int:
    """The worker's pass across merchants: codes past their life leave their events; codes
    older than :data:`CODE_RETENTION` are deleted and their events lose the phone; sessions
    past their refresh expiry are deleted with their spent refresh tokens. Returns the rows
    changed or deleted."""
    done = 0
    expired = session.scalars(select(SignInCode).where(
        SignInCode.redacted_at.is_(None), SignInCode.expires_at <= now)
        .order_by(SignInCode.expires_at).limit(batch)).all()
    old = session.scalars(select(SignInCode).where(
        SignInCode.created_at < now - CODE_RETENTION)
        .order_by(SignInCode.created_at).limit(batch)).all()
    for tenant_id in sorted({r.tenant_id for r in expired}):
        done += _redact_code_events(session, tenant_id,
                                    [r for r in expired if r.tenant_id == tenant_id], now)
    for tenant_id in sorted({r.tenant_id for r in old}):
        mine = [r for r in old if r.tenant_id == tenant_id]
        _redact_code_events(session, tenant_id, mine, now, extra=("phone",))
        done += rowcount(session.execute(delete(SignInCode).where(
            SignInCode.tenant_id == tenant_id, SignInCode.id.in_([r.id for r in mine]))))
    ended = session.execute(select(BuyerSession.tenant_id, BuyerSession.id).where(
        BuyerSession.refresh_expires_at <= now)
        .order_by(BuyerSession.refresh_expires_at).limit(batch)).all()
    for tenant_id in sorted({t for t, _ in ended}):
        ids = [i for t, i in ended if t == tenant_id]
        done += rowcount(session.execute(delete(BuyerSession).where(
            BuyerSession.tenant_id == tenant_id, BuyerSession.id.in_(ids))))
    done += rowcount(session.execute(delete(SpentRefreshToken).where(
        SpentRefreshToken.spent_at <= now - dt.timedelta(days=REFRESH_DAYS))))
    if ended:
        credentials.changed(session)
    return done


# ------------------------------------------------------------------ a person's data (privacy)

_SECRET_COLUMNS = {"access_hash", "refresh_hash", "code_hash", "salt", "sandbox_code"}


def export_buyer(session: Session, tenant: Tenant, member_ids: Sequence[str],
                 values: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """The person's storefront sessions (by member) and sign-in codes (by phone), without
    the tokens' and codes' hashes."""
    phones = sorted(v for v in values if v)

    def plain(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k not in _SECRET_COLUMNS} for r in rows]

    return {"storefront_sessions": plain(export_rows(session, BuyerSession.__table__,
                                                     tenant.id, "member_id", member_ids)),
            "storefront_sign_in_codes": plain(export_rows(session, SignInCode.__table__,
                                                          tenant.id, "phone", phones))}


def erase_buyer(session: Session, tenant: Tenant, member_ids: Sequence[str],
                values: Iterable[str]) -> int:
    """Delete the person's sessions (they are signed out) and the codes sent to their phone."""
    phones = sorted(v for v in values if v)
    sessions = select(BuyerSession.id).where(BuyerSession.tenant_id == tenant.id,
                                             BuyerSession.member_id.in_(list(member_ids)))
    session.execute(delete(SpentRefreshToken).where(
        SpentRefreshToken.tenant_id == tenant.id,
        SpentRefreshToken.session_id.in_(list(session.scalars(sessions)))))
    done = rowcount(session.execute(delete(BuyerSession).where(
        BuyerSession.tenant_id == tenant.id, BuyerSession.member_id.in_(list(member_ids)))))
    if phones:
        done += rowcount(session.execute(delete(SignInCode).where(
            SignInCode.tenant_id == tenant.id, SignInCode.phone.in_(phones))))
    credentials.changed(session)
    return done


def sign_in_code_ids(session: Session, tenant: Tenant, phones: Iterable[str]) -> list[str]:
    """The codes sent to these phones: the subjects of their ``storefront.sign_in_code_
    requested`` events, for privacy to find those events by subject (before an erasure
    deletes the codes). Codes past :data:`CODE_RETENTION` are gone, and their events hold
    no phone any more."""
    wanted = sorted({p for p in phones if p})
    if not wanted:
        return []
    return list(session.scalars(select(SignInCode.id).where(
        SignInCode.tenant_id == tenant.id, SignInCode.phone.in_(wanted))
        .order_by(SignInCode.id)))

"""Cursor pagination, newest first. The cursor is the id of the last item of the page.

Ids are time-ordered (see ``ids``), so ``ORDER BY id DESC`` is creation order and stays stable
while new rows arrive. A cursor is checked before use: only an id of the listed kind, in the
exact form ``ids`` makes (``prod_`` + a 26-character ULID), is one we could have issued; anything
else is a 422 ``invalid-cursor`` problem, not a silently different page.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy import Select
from sqlalchemy.orm import Session

from haina.core.errors import Invalid
from haina.core.ids import PREFIXES

T = TypeVar("T")
MAX_LIMIT = 200
# a prefixed ULID: a lowercase prefix, "_", 26 characters of Crockford's base32 (ids.ulid)
_CURSOR = re.compile(r"[a-z]{1,8}_[0-9A-HJKMNP-TV-Z]{26}")


class InvalidCursor(Invalid):
    slug, title = "invalid-cursor", "Invalid cursor"


class Page(BaseModel, Generic[T]):
    object: str = "list"
    data: list[T]
    has_more: bool
    next_cursor: str | None = Field(None, description="pass as ?cursor= to get the next page")


def check_cursor(cursor: str, kind: str | None = None) -> str:
    """``cursor`` if it is an id we could have issued (of ``kind``, a key of ``ids.PREFIXES``,
    when given); else an ``invalid-cursor`` problem."""
    if not _CURSOR.fullmatch(cursor) or (
            kind is not None and not cursor.startswith(PREFIXES[kind] + "_")):
        raise InvalidCursor("this cursor was not issued by this list; pass the next_cursor "
                            "of a previous page, or no cursor for the first page",
                            cursor=cursor[:100])
    return cursor


def paginate(session: Session, stmt: Select[Any], id_column: Any, *, limit: int,
             cursor: str | None, convert: Callable[[Any], T], kind: str | None = None) -> Page[T]:
    """Run ``stmt`` (already filtered by tenant) one page at a time. ``kind`` (a key of
    ``ids.PREFIXES``) is the kind of the listed ids: a cursor of another kind is refused."""
    limit = max(1, min(limit, MAX_LIMIT))
    if cursor:  # an empty ?cursor= is the first page, as no cursor
        stmt = stmt.where(id_column < check_cursor(cursor, kind))
    rows: Sequence[Any] = session.scalars(stmt.order_by(id_column.desc()).limit(limit + 1)).all()
    has_more = len(rows) > limit
    rows = rows[:limit]
    data = [convert(r) for r in rows]
    return Page[T](data=data, has_more=has_more,
                   next_cursor=getattr(rows[-1], id_column.key) if has_more and rows else None)

"""Cursor pagination, newest first. The cursor is the id of the last item of the page.

Ids are time-ordered (see ``ids``), so ``ORDER BY id DESC`` is creation order and stays stable
while new rows arrive.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy import Select
from sqlalchemy.orm import Session

T = TypeVar("T")
MAX_LIMIT = 200


class Page(BaseModel, Generic[T]):
    object: str = "list"
    data: list[T]
    has_more: bool
    next_cursor: str | None = Field(None, description="pass as ?cursor= to get the next page")


def paginate(session: Session, stmt: Select[Any], id_column: Any, *, limit: int,
             cursor: str | None, convert: Callable[[Any], T]) -> Page[T]:
    """Run ``stmt`` (already filtered by tenant) one page at a time."""
    limit = max(1, min(limit, MAX_LIMIT))
    if cursor:
        stmt = stmt.where(id_column < cursor)
    rows: Sequence[Any] = session.scalars(stmt.order_by(id_column.desc()).limit(limit + 1)).all()
    has_more = len(rows) > limit
    rows = rows[:limit]
    data = [convert(r) for r in rows]
    return Page[T](data=data, has_more=has_more,
                   next_cursor=getattr(rows[-1], id_column.key) if has_more and rows else None)

"""The shapes every request body shares (issue 9): strict, closed and bounded.

* :class:`RequestModel` is the base of every request body: an unknown field is refused
  (``extra="forbid"``), types are strict as Stripe's are (``"2"`` or ``true`` is not a
  quantity, ``"yes"`` is not a consent, an amount is a decimal string, never a JSON number),
  and no string anywhere in the body may hold a NUL character (PostgreSQL cannot store one in
  text; SQLite would, so both refuse it here, the same way).
* :data:`Metadata` is Stripe's metadata: at most 50 keys of at most 40 characters, each value a
  string of at most 500 characters (no nested objects, numbers or nulls).
* :func:`not_blank` refuses a title or name of whitespace only.

A date in a strict model must be given as ``Field(strict=False)`` (JSON has no dates: the
ISO string is parsed); :data:`LaxDate` does that.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    create_model,
    model_validator,
)

MAX_METADATA_KEYS = 50
MAX_METADATA_KEY_LENGTH = 40
MAX_METADATA_VALUE_LENGTH = 500
#: an id given in a body (``member_id``, ``location_id``…): ours are far shorter
MAX_ID_LENGTH = 64
#: units of one line (orders, carts, reservations, shipments)
MAX_QUANTITY = 10_000
#: member points in one request (redeemed on an order, adjusted by hand)
MAX_POINTS = 10**12
#: units added or removed by one stock adjustment (the same bound as a variant's stock)
MAX_STOCK_DELTA = 10**9

METADATA_DESCRIPTION = (
    f"your own key → value pairs, as Stripe's: at most {MAX_METADATA_KEYS} keys of 1 to "
    f"{MAX_METADATA_KEY_LENGTH} characters, each value a string of at most "
    f"{MAX_METADATA_VALUE_LENGTH} characters (no nested objects, numbers or nulls: store a "
    "number as its text)")

NUL = "\x00"


def _nul_at(value: Any, path: str = "") -> str | None:
    """Where in a parsed JSON value a string (or an object key) holds a NUL, or None."""
    if isinstance(value, str):
        return path or "the value" if NUL in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and NUL in key:
                return f"the key {here!r}"
            found = _nul_at(item, here)
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _nul_at(item, f"{path}[{i}]")
            if found:
                return found
    return None


class RequestModel(BaseModel):
    """The base of a request body: unknown fields refused, strict types, no NUL characters."""

    model_config = ConfigDict(extra="forbid", strict=True)

    #: fields of an update that may be left out (kept) but not cleared with ``null``
    not_null: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _null_only_where_it_clears(self) -> Any:
        for name in self.not_null:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null: leave it out to keep its value")
        return self

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        where = _nul_at(data)
        if where:
            raise ValueError(f"{where} contains a NUL character (\\u0000), which text may not "
                             "hold")
        return data


def not_blank(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError("must not be blank (whitespace only)")
    return value


#: a title or name: not whitespace only (length bounds are the field's own)
NotBlank = AfterValidator(not_blank)

def _date_text(value: Any) -> Any:
    if not isinstance(value, (str, dt.date)):
        raise ValueError("a date is a string such as \"2024-03-01\"")
    return value


#: a date in a request: an ISO string (``"2024-03-01"``), parsed
LaxDate = Annotated[dt.date, Strict(False), BeforeValidator(_date_text)]

MetadataKey = Annotated[str, Field(min_length=1, max_length=MAX_METADATA_KEY_LENGTH)]
MetadataValue = Annotated[str, Field(max_length=MAX_METADATA_VALUE_LENGTH)]
Metadata = Annotated[dict[MetadataKey, MetadataValue],
                     Field(max_length=MAX_METADATA_KEYS, description=METADATA_DESCRIPTION)]

#: an id given in a body
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]
Quantity = Annotated[int, Field(gt=0, le=MAX_QUANTITY,
                                description=f"units, 1 to {MAX_QUANTITY}")]


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: ``patch``'s members replace ``target``'s, objects merge
    member by member, and a ``null`` member removes the target's (back to its default)."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def partial_model(model: type[BaseModel], name: str, doc: str,
                  nested: dict[str, Any] | None = None) -> type[RequestModel]:
    """A request model with every field of ``model`` optional and ``null`` allowed (a merge
    patch of it: :func:`merge_patch`), each field's type and bounds kept, so that the OpenAPI
    document and the first validation say what each field takes. ``nested`` gives the patch
    model of a field that is itself an object. The merged whole is validated by ``model``."""
    fields: dict[str, Any] = {}
    for field_name, info in model.model_fields.items():
        kind: Any = (nested or {}).get(field_name)
        if kind is None:
            kind = Annotated[info.annotation, *info.metadata] if info.metadata \
                else info.annotation
        fields[field_name] = (kind | None, Field(None, description=info.description))
    made: type[RequestModel] = create_model(name, __base__=RequestModel, __doc__=doc,
                                            **fields)
    return made

"""Pydantic models built from values the code already trusts (its own rows), without validation.

``BaseModel.model_construct`` skips validation but still walks every field in Python (aliases,
defaults, the set of given fields); on the order path that walk cost more than the SQL it
answers. :func:`construct` fills the instance directly when every field is given, and falls
back to ``model_construct`` otherwise, so the result is the same either way.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

_set = object.__setattr__
_FIELDS: dict[type, frozenset[str]] = {}


def construct(cls: type[M], **values: Any) -> M:
    """``cls.model_construct(**values)``, fast when ``values`` names exactly ``cls``'s fields."""
    fields = _FIELDS.get(cls)
    if fields is None:
        plain = (not cls.__pydantic_root_model__ and not cls.__pydantic_post_init__
                 and cls.model_config.get("extra") != "allow"
                 and all(f.alias in (None, name) for name, f in cls.model_fields.items()))
        fields = _FIELDS[cls] = frozenset(cls.model_fields) if plain else frozenset({"\0"})
    if values.keys() != fields:
        return cls.model_construct(**values)
    model = cls.__new__(cls)
    _set(model, "__dict__", values)
    _set(model, "__pydantic_fields_set__", set(fields))
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model

"""Imports every module's tables so that ``Base.metadata`` is complete (Alembic, tests)."""

from haina.core import events, idempotency  # noqa: F401
from haina.platform import models as platform_models  # noqa: F401

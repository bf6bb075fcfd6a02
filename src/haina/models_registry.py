"""Imports every module's tables so that ``Base.metadata`` is complete (Alembic, tests)."""

from haina.analytics import models as analytics_models  # noqa: F401
from haina.campaigns import models as campaigns_models  # noqa: F401
from haina.carts import models as carts_models  # noqa: F401
from haina.catalog import models as catalog_models  # noqa: F401
from haina.core import events, idempotency, ratelimit  # noqa: F401
from haina.crossborder import models as crossborder_models  # noqa: F401
from haina.inventory import models as inventory_models  # noqa: F401
from haina.marketing import models as marketing_models  # noqa: F401
from haina.members import models as members_models  # noqa: F401
from haina.o2o import models as o2o_models  # noqa: F401
from haina.orders import models as orders_models  # noqa: F401
from haina.payments import models as payments_models  # noqa: F401
from haina.platform import models as platform_models  # noqa: F401
from haina.privacy import models as privacy_models  # noqa: F401
from haina.storefront import models as storefront_models  # noqa: F401
from haina.webhooks import models as webhooks_models  # noqa: F401

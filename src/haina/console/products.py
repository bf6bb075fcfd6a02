"""The console's products and stock (``haina.catalog``, ``haina.inventory``): the catalogue
with search and a status filter, each product's price and stock (on hand, held by orders,
available), and a product's page with its variants, their stock per location and their latest
stock adjustments (each naming its order or reason). Read only: products and stock are
changed through the API and the CLI. Routes register on the console's router."""

from __future__ import annotations

import typing
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response

from haina.catalog import service as catalog
from haina.catalog.schemas import ProductStatus
from haina.console.web import PAGE_SIZE, Visit, _page, _t, _view, router
from haina.core.http import SessionDep
from haina.inventory import service as inventory

STATUSES: tuple[str, ...] = typing.get_args(ProductStatus)
ADJUSTMENTS = 20  # the latest of each variant on its product's page


@router.get("/console/products")
@_view
def product_list(request: Request, session: SessionDep, v: Visit, q: str | None = None,
                 status: str | None = None, cursor: str | None = None) -> Response:
    q = (q or "").strip()[:100] or None
    status = status if status in STATUSES else None
    page = catalog.list_products(session, v.tenant, q=q, status=status, limit=PAGE_SIZE,
                                 cursor=cursor)
    more = None
    if page.next_cursor:
        more = request.url.path + "?" + urlencode(
            {k: val for k, val in (("q", q), ("status", status),
                                   ("cursor", page.next_cursor)) if val})
    return _page(request, v, "console/products.html", title=_t(v, "Products"),
                 products=page.data, q=q or "", status=status, statuses=STATUSES, more=more)


@router.get("/console/products/{product_id}")
@_view
def product_page(request: Request, session: SessionDep, v: Visit, product_id: str) -> Response:
    product = catalog.get_product(session, v.tenant, product_id)
    locations = {loc.id: loc.name for loc in inventory.list_locations(session, v.tenant,
                                                                      limit=100).data}
    levels = {variant.id: inventory.levels(session, v.tenant, variant.id).data
              for variant in product.variants}
    adjustments = {variant.id: inventory.list_adjustments(session, v.tenant, variant.id,
                                                          limit=ADJUSTMENTS).data
                   for variant in product.variants}
    return _page(request, v, "console/product.html", title=product.title, product=product,
                 locations=locations, levels=levels, adjustments=adjustments)

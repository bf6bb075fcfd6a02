from __future__ import annotations

from fastapi import Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, Response

from haina.catalog import service
from haina.catalog.schemas import (
    AttributeDefCreate,
    AttributeDefOut,
    CategoryCreate,
    CategoryOut,
    MediaOut,
    ProductCreate,
    ProductOut,
    ProductStatus,
    ProductUpdate,
    VariantCreate,
    VariantUpdate,
)
from haina.core.context import Tenant
from haina.core.errors import Invalid, NotFound
from haina.core.http import (
    IdempotencyKeyHeader,
    Router,
    SessionDep,
    create,
    in_unit_of_work,
    json_out,
)
from haina.core.pagination import Page
from haina.platform.auth import require

router = Router(prefix="/v1", tags=["catalog"])
READ, WRITE = require("catalog:read"), require("catalog:write")


@router.post("/products", status_code=201, response_model=ProductOut,
             summary="Create a product (one SKU, or several variants)")
def create_product(session: SessionDep, body: ProductCreate, request: Request,
                   tenant: Tenant = Depends(WRITE),
                   idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.create_product(session, tenant, body))


@router.get("/products", response_model=Page[ProductOut],
            summary="List or search products (newest first)")
def list_products(session: SessionDep, request: Request,
                  q: str | None = Query(None, max_length=200, description="search words"),
                  category_id: str | None = None,
                  status: ProductStatus | None = None,
                  limit: int = Query(50, ge=1, le=200),
                  cursor: str | None = Query(None, description="next_cursor of the previous page"),
                  tenant: Tenant = Depends(READ)) -> Page[ProductOut]:
    # attribute filters: ?attr.width=205&attr.rim_diameter=16
    attrs = {k[5:]: v for k, v in request.query_params.items() if k.startswith("attr.") and k[5:]}
    return service.list_products(session, tenant, q=q, category_id=category_id, status=status,
                                 attributes=attrs, limit=limit, cursor=cursor)


@router.get("/products/{product_id}", response_model=ProductOut)
def get_product(session: SessionDep, product_id: str, tenant: Tenant = Depends(READ)) -> ProductOut:
    return service.get_product(session, tenant, product_id)


@router.patch("/products/{product_id}", response_model=ProductOut)
def update_product(session: SessionDep, product_id: str, body: ProductUpdate,
                   tenant: Tenant = Depends(WRITE)) -> Response:
    out = service.update_product(session, tenant, product_id, body)
    return json_out(out)


@router.post("/products/{product_id}/variants", status_code=201, response_model=ProductOut)
def add_variant(session: SessionDep, product_id: str, body: VariantCreate, request: Request,
                tenant: Tenant = Depends(WRITE),
                idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.add_variant(session, tenant, product_id, body))


@router.patch("/variants/{variant_id}", response_model=ProductOut)
def update_variant(session: SessionDep, variant_id: str, body: VariantUpdate,
                   tenant: Tenant = Depends(WRITE)) -> Response:
    out = service.update_variant(session, tenant, variant_id, body)
    return json_out(out)


@router.post("/products/{product_id}/media", status_code=201, response_model=MediaOut,
             summary="Upload an image or short video (multipart field `file`)")
async def upload_media(product_id: str, request: Request, file: UploadFile = File(...),
                       alt: str | None = Form(None, max_length=500),
                       tenant: Tenant = Depends(WRITE)) -> Response:
    if "\x00" in (alt or "") or "\x00" in (file.filename or ""):
        raise Invalid("the file name and alt text may not hold a NUL character (\\u0000)")
    content = await file.read()
    out = await in_unit_of_work(request, lambda session: service.add_media(
        session, tenant, product_id, filename=file.filename or "upload",
        content_type=(file.content_type or "").split(";")[0].strip(), content=content,
        media_dir=request.app.state.settings.media_dir, alt=alt,
        uploaded_by=tenant.app_id or tenant.token_id), tenant=tenant)
    return json_out(out, 201)


@router.get("/media/{media_id}/content", summary="The media file itself",
            response_class=FileResponse)
def media_content(session: SessionDep, media_id: str, request: Request,
                  tenant: Tenant = Depends(READ)) -> FileResponse:
    media, path = service.media_file(session, tenant, media_id, request.app.state.settings.media_dir)
    if not path.exists():
        raise NotFound("the file of this media is missing from storage", slug="media-file-missing")
    return FileResponse(path, media_type=media.content_type, filename=media.filename)


@router.delete("/media/{media_id}", status_code=204)
def delete_media(session: SessionDep, media_id: str, tenant: Tenant = Depends(WRITE)) -> Response:
    service.delete_media(session, tenant, media_id)
    return Response(status_code=204)


@router.post("/categories", status_code=201, response_model=CategoryOut)
def create_category(session: SessionDep, body: CategoryCreate, request: Request,
                    tenant: Tenant = Depends(WRITE),
                    idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.create_category(session, tenant, body))


@router.get("/categories", response_model=Page[CategoryOut],
            summary="List categories (all of them, by slug, on one page)")
def list_categories(session: SessionDep, tenant: Tenant = Depends(READ)) -> Page[CategoryOut]:
    return service.list_categories(session, tenant)


@router.post("/attributes", status_code=201, response_model=AttributeDefOut,
             summary="Define a typed product attribute")
def create_attribute(session: SessionDep, body: AttributeDefCreate, request: Request,
                     tenant: Tenant = Depends(WRITE),
                     idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.create_attribute(session, tenant, body))


@router.get("/attributes", response_model=Page[AttributeDefOut],
            summary="List attribute definitions (all of them, by code, on one page)")
def list_attributes(session: SessionDep, tenant: Tenant = Depends(READ)) -> Page[AttributeDefOut]:
    return service.list_attributes(session, tenant)

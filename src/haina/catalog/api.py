from __future__ import annotations

from fastapi import Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, Response
from sqlalchemy.orm import Session

from haina.catalog import service
from haina.catalog.schemas import (
    AttributeDefCreate,
    AttributeDefOut,
    CategoryCreate,
    CategoryOut,
    MediaOut,
    ProductCreate,
    ProductOut,
    ProductUpdate,
    VariantCreate,
    VariantUpdate,
)
from haina.core.context import Tenant
from haina.core.errors import NotFound
from haina.core.http import IdempotencyKeyHeader, Router, create, get_session, json_out
from haina.core.pagination import Page
from haina.platform.auth import require

router = Router(prefix="/v1", tags=["catalog"])
READ, WRITE = require("catalog:read"), require("catalog:write")


@router.post("/products", status_code=201, response_model=ProductOut,
             summary="Create a product (one SKU, or several variants)")
def create_product(body: ProductCreate, request: Request, tenant: Tenant = Depends(WRITE),
                   session: Session = Depends(get_session),
                   idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.create_product(session, tenant, body))


@router.get("/products", response_model=Page[ProductOut],
            summary="List or search products (newest first)")
def list_products(request: Request,
                  q: str | None = Query(None, max_length=200, description="search words"),
                  category_id: str | None = None,
                  status: str | None = Query(None, pattern="^(active|draft|archived)$"),
                  limit: int = Query(50, ge=1, le=200), cursor: str | None = None,
                  tenant: Tenant = Depends(READ),
                  session: Session = Depends(get_session)) -> Page[ProductOut]:
    # attribute filters: ?attr.width=205&attr.rim_diameter=16
    attrs = {k[5:]: v for k, v in request.query_params.items() if k.startswith("attr.") and k[5:]}
    return service.list_products(session, tenant, q=q, category_id=category_id, status=status,
                                 attributes=attrs, limit=limit, cursor=cursor)


@router.get("/products/{product_id}", response_model=ProductOut)
def get_product(product_id: str, tenant: Tenant = Depends(READ),
                session: Session = Depends(get_session)) -> ProductOut:
    return service.get_product(session, tenant, product_id)


@router.patch("/products/{product_id}", response_model=ProductOut)
def update_product(product_id: str, body: ProductUpdate, tenant: Tenant = Depends(WRITE),
                   session: Session = Depends(get_session)) -> Response:
    out = service.update_product(session, tenant, product_id, body)
    session.commit()
    return json_out(out)


@router.post("/products/{product_id}/variants", status_code=201, response_model=ProductOut)
def add_variant(product_id: str, body: VariantCreate, request: Request,
                tenant: Tenant = Depends(WRITE), session: Session = Depends(get_session),
                idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.add_variant(session, tenant, product_id, body))


@router.patch("/variants/{variant_id}", response_model=ProductOut)
def update_variant(variant_id: str, body: VariantUpdate, tenant: Tenant = Depends(WRITE),
                   session: Session = Depends(get_session)) -> Response:
    out = service.update_variant(session, tenant, variant_id, body)
    session.commit()
    return json_out(out)


@router.post("/products/{product_id}/media", status_code=201, response_model=MediaOut,
             summary="Upload an image or short video (multipart field `file`)")
async def upload_media(product_id: str, request: Request, file: UploadFile = File(...),
                       alt: str | None = Form(None), tenant: Tenant = Depends(WRITE),
                       session: Session = Depends(get_session)) -> Response:
    content = await file.read()
    out = service.add_media(session, tenant, product_id, filename=file.filename or "upload",
                            content_type=(file.content_type or "").split(";")[0].strip(),
                            content=content, media_dir=request.app.state.settings.media_dir,
                            alt=alt, uploaded_by=tenant.app_id or tenant.token_id)
    session.commit()
    return json_out(out, 201)


@router.get("/media/{media_id}/content", summary="The media file itself",
            response_class=FileResponse)
def media_content(media_id: str, request: Request, tenant: Tenant = Depends(READ),
                  session: Session = Depends(get_session)) -> FileResponse:
    media, path = service.media_file(session, tenant, media_id, request.app.state.settings.media_dir)
    if not path.exists():
        raise NotFound("the file of this media is missing from storage", slug="media-file-missing")
    return FileResponse(path, media_type=media.content_type, filename=media.filename)


@router.delete("/media/{media_id}", status_code=204)
def delete_media(media_id: str, tenant: Tenant = Depends(WRITE),
                 session: Session = Depends(get_session)) -> Response:
    service.delete_media(session, tenant, media_id)
    session.commit()
    return Response(status_code=204)


@router.post("/categories", status_code=201, response_model=CategoryOut)
def create_category(body: CategoryCreate, request: Request, tenant: Tenant = Depends(WRITE),
                    session: Session = Depends(get_session),
                    idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.create_category(session, tenant, body))


@router.get("/categories", response_model=list[CategoryOut])
def list_categories(tenant: Tenant = Depends(READ),
                    session: Session = Depends(get_session)) -> list[CategoryOut]:
    return service.list_categories(session, tenant)


@router.post("/attributes", status_code=201, response_model=AttributeDefOut,
             summary="Define a typed product attribute")
def create_attribute(body: AttributeDefCreate, request: Request, tenant: Tenant = Depends(WRITE),
                     session: Session = Depends(get_session),
                     idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.create_attribute(session, tenant, body))


@router.get("/attributes", response_model=list[AttributeDefOut])
def list_attributes(tenant: Tenant = Depends(READ),
                    session: Session = Depends(get_session)) -> list[AttributeDefOut]:
    return service.list_attributes(session, tenant)

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from haina.core.money import Money, Price
from haina.core.schema_types import Id, NotBlank, RequestModel
from haina.inventory.schemas import StockOut

# Numbers in attributes: finite and at most 10^15 in absolute value, so every one is exact as a
# JSON number in JavaScript (below 2^53), fits a 64-bit integer and compares as a float in filters.
MAX_ATTRIBUTE_NUMBER = 10**15
# Initial stock of a variant: 0 to 10^9 units.
MAX_STOCK = 1_000_000_000

AttrValue = str | int | float | bool
AttrInput = (Annotated[str, Field(max_length=1000)]
             | Annotated[int, Field(ge=-MAX_ATTRIBUTE_NUMBER, le=MAX_ATTRIBUTE_NUMBER)]
             | Annotated[float, Field(ge=-MAX_ATTRIBUTE_NUMBER, le=MAX_ATTRIBUTE_NUMBER,
                                      allow_inf_nan=False)]
             | bool)
ATTRIBUTES_DESCRIPTION = ("attribute code → text (at most 1000 characters), true/false or a "
                          "finite number from -10^15 to 10^15; at most 100 attributes")
AttributeCode = Annotated[str, Field(min_length=1, max_length=64)]
Attributes = Annotated[dict[AttributeCode, AttrInput], Field(max_length=100)]
ProductStatus = Literal["active", "draft", "archived"]
SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,99}$"
PRICE_DESCRIPTION = ("in the merchant's currency; from 0 (free samples) to 10^12 "
                     "(1000000000000) major units")
STOCK_DESCRIPTION = "initial units at the default location, 0 to 10^9 (1000000000)"


class VariantCreate(RequestModel):
    sku: str = Field(pattern=SKU_PATTERN, examples=["TIRE-205-55R16"],
                     description="unique within the merchant, compared without regard to case "
                                 "(ABC-1 and abc-1 are the same SKU)")
    title: Annotated[str, NotBlank] | None = Field(None, min_length=1, max_length=300)
    price: Price = Field(description=PRICE_DESCRIPTION)
    attributes: Attributes = Field(default_factory=dict,
                                             description=ATTRIBUTES_DESCRIPTION)
    stock: int | None = Field(None, ge=0, le=MAX_STOCK, description=STOCK_DESCRIPTION)


class ProductCreate(RequestModel):
    """A product with one variant (``sku`` + ``price``) or several (``variants``)."""

    title: Annotated[str, NotBlank] = Field(min_length=1, max_length=300)
    description: str | None = Field(None, max_length=20_000)
    sku: str | None = Field(None, pattern=SKU_PATTERN)
    price: Price | None = Field(None, description=PRICE_DESCRIPTION)
    stock: int | None = Field(None, ge=0, le=MAX_STOCK, description=STOCK_DESCRIPTION)
    category_id: Id | None = None
    status: ProductStatus = "active"
    attributes: Attributes = Field(default_factory=dict,
                                             description=ATTRIBUTES_DESCRIPTION)
    variants: list[VariantCreate] | None = Field(None, max_length=100)

    @model_validator(mode="after")
    def _one_shape(self) -> ProductCreate:
        if self.variants:
            if self.sku or self.price or self.stock is not None:
                raise ValueError("give either sku/price/stock or variants, not both")
        elif not (self.sku and self.price):
            raise ValueError("a product needs sku and price (or a list of variants)")
        return self

    def variant_list(self) -> list[VariantCreate]:
        if self.variants:
            return self.variants
        assert self.sku and self.price
        return [VariantCreate(sku=self.sku, title=self.title, price=self.price, stock=self.stock)]


class ProductUpdate(RequestModel):
    not_null = ("title", "status")

    title: Annotated[str, NotBlank] | None = Field(None, min_length=1, max_length=300)
    description: str | None = Field(None, max_length=20_000)
    category_id: Id | None = None
    status: ProductStatus | None = None
    attributes: Attributes | None = Field(None, description=ATTRIBUTES_DESCRIPTION)


class VariantUpdate(RequestModel):
    title: Annotated[str, NotBlank] | None = Field(None, min_length=1, max_length=300)
    price: Price | None = Field(None, description=PRICE_DESCRIPTION)
    attributes: Attributes | None = Field(None, description=ATTRIBUTES_DESCRIPTION)


class VariantOut(BaseModel):
    id: str
    object: str = "variant"
    product_id: str
    sku: str
    title: str
    price: Money
    attributes: dict[str, AttrValue]
    stock: StockOut


class MediaOut(BaseModel):
    id: str
    object: str = "media"
    product_id: str
    kind: str
    content_type: str
    filename: str
    size: int
    sha256: str
    alt: str | None
    url: str
    uploaded_by: str | None
    created_at: dt.datetime


class ProductOut(BaseModel):
    id: str
    object: str = "product"
    title: str
    description: str | None
    category_id: str | None
    status: str
    attributes: dict[str, AttrValue]
    sku: str = Field(description="the first variant's SKU")
    price: Money = Field(description="the first variant's price")
    stock: StockOut = Field(description="all variants, all locations")
    variants: list[VariantOut]
    media: list[MediaOut]
    created_at: dt.datetime
    updated_at: dt.datetime


class CategoryCreate(RequestModel):
    name: Annotated[str, NotBlank] = Field(min_length=1, max_length=200)
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,99}$")
    parent_id: Id | None = None


class CategoryOut(BaseModel):
    id: str
    object: str = "category"
    name: str
    slug: str
    parent_id: str | None
    created_at: dt.datetime


class AttributeDefCreate(RequestModel):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", examples=["rim_diameter"])
    name: Annotated[str, NotBlank] = Field(min_length=1, max_length=200)
    type: Literal["number", "text", "enum", "bool"]
    unit: str | None = Field(None, max_length=32)
    options: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        None, max_length=500, description="allowed values of an enum: at most 500, each 1 to "
                                          "200 characters")

    @model_validator(mode="after")
    def _enum_has_options(self) -> AttributeDefCreate:
        if self.type == "enum" and not self.options:
            raise ValueError("an enum attribute needs options")
        if self.type != "enum" and self.options:
            raise ValueError("only enum attributes take options")
        return self


class AttributeDefOut(BaseModel):
    code: str
    name: str
    type: Literal["number", "text", "enum", "bool"]
    unit: str | None = None
    options: list[str] | None = None
    id: str
    object: str = "attribute"
    created_at: dt.datetime


class ProductBrief(BaseModel):
    """What a search shows of a product and fitment reads (``catalog.service.product_briefs``):
    the first variant's SKU and price, the product's attributes with the first variant's over
    them; no stock, media or other variants."""

    id: str
    sku: str
    title: str
    price: Money
    category_id: str | None
    attributes: dict[str, AttrValue]


class VariantRef(BaseModel):
    """What an order needs of a variant: the price snapshot and titles. Frozen: refs are kept
    in a cache shared by requests (``catalog.service.variants_by_sku``)."""

    model_config = ConfigDict(frozen=True)

    id: str
    product_id: str
    sku: str
    title: str
    product_title: str
    price_minor: int
    currency: str
    status: str
    category_id: str | None = None  # the product's (promotions and coupons target it)
    # the product's trade mode (catalog.service.TRADE_MODES): None for general trade
    trade_mode: str | None = None

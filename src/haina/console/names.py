"""Words the console shows that come from data (stages, segments, statuses, channels, roles,
scopes' components) or from its own keys (sections, plots): each key's English label, marked
for the message catalog with ``N_`` (which only marks a string for ``make console-messages``).
Templates show a key with ``w(key)``: its label in the reader's language."""

from __future__ import annotations


def N_(text: str) -> str:
    return text


LABELS = {
    # the sections
    "dashboard": N_("Dashboard"), "members": N_("Members"), "lifecycle": N_("Lifecycle"),
    "orders": N_("Orders"), "coupons": N_("Coupons"), "promotions": N_("Promotions"),
    "apps": N_("Apps"),
    "webhooks": N_("Webhooks"), "points": N_("Service points"),
    "declarations": N_("Cross-border"), "privacy": N_("Data requests"),
    "shop_keys": N_("Storefront"), "settings_page": N_("Settings"), "products": N_("Products"),
    "payments_page": N_("Payments"), "carts": N_("Carts"), "staff_page": N_("Staff"),
    "audit": N_("Audit trail"),
    # payments (haina.payments): methods, capture, the ledger's accounts and entries
    "method_card": N_("card"), "method_cash": N_("cash"), "method_imported": N_("imported"),
    "method_": N_("other"), "capture_automatic": N_("at once"),
    "capture_manual": N_("after authorisation"),
    "platform_cash": N_("cash held by the platform"),
    "merchant_payable": N_("owed to the shop"), "platform_fees": N_("platform fees"),
    "entry_capture": N_("capture"), "entry_refund": N_("refund"), "entry_payout": N_("payout"),
    # carts (haina.carts)
    "cart_open": N_("open"), "cart_ordered": N_("ordered"), "cart_abandoned": N_("abandoned"),
    # O2O partnerships (haina.o2o.schemas.PartnershipOut): a side and a state
    "side_merchant": N_("the brand"), "side_installer": N_("the installer"),
    "partnership_invited": N_("invited"), "partnership_active": N_("active"),
    "partnership_ended": N_("ended"),
    # the audit trail's actors (haina.core.context)
    "actor_staff": N_("staff account"), "actor_staff_token": N_("staff token"),
    "actor_app": N_("app"), "actor_buyer": N_("buyer"),
    "actor_storefront_key": N_("storefront key"),
    # product states (haina.catalog.schemas.ProductStatus)
    "product_active": N_("listed"), "product_draft": N_("draft"),
    "product_archived": N_("archived"),
    # stock adjustments' reasons (haina.inventory.schemas)
    "stock_received": N_("goods received"), "stock_correction": N_("correction"),
    "stock_damaged": N_("damaged"), "stock_lost": N_("missing"), "stock_returned": N_("returned"),
    "stock_cycle_count": N_("stock count"), "stock_transfer": N_("transfer"),
    "stock_fulfilled": N_("shipped for an order"),
    # personal-information requests (haina.privacy) and the apps' acknowledgements
    "export": N_("export"), "erase": N_("erasure"), "merchant_redact": N_("shop data, app removed"),
    "acknowledged": N_("acknowledged"), "overdue": N_("overdue"),
    # declaration states (haina.crossborder.lifecycle) and quota states
    "ready": N_("ready"), "accepted": N_("accepted"), "released": N_("released"),
    "rejected": N_("rejected"), "claimed": N_("claimed"),
    # the three-document check's documents
    "payment": N_("payment"), "waybill": N_("waybill"),
    "campaigns": N_("Campaigns"), "scheduled": N_("scheduled"), "running": N_("running"),
    "ended": N_("ended"),
    # a campaign's enrolment jobs (haina.campaigns.schemas.EnrolmentOut: status, kind)
    "enrolment_queued": N_("queued"), "enrolment_running": N_("running"),
    "enrolment_succeeded": N_("done"), "enrolment_failed": N_("failed"),
    "enrolment_canceled": N_("cancelled"), "enrolment_launch": N_("launch"),
    "enrolment_reevaluate": N_("re-evaluation"),
    # lifecycle stages and RFM segments (haina.analytics.schemas)
    "new": N_("new"), "active": N_("active"), "at_risk": N_("at risk"), "lapsed": N_("lapsed"),
    "reactivated": N_("reactivated"), "champions": N_("champions"), "loyal": N_("loyal"),
    "potential": N_("potential loyalists"), "cant_lose": N_("can't lose"),
    "hibernating": N_("hibernating"), "lost": N_("lost"),
    # order, payment, delivery and coupon states
    "pending_payment": N_("awaiting payment"), "paid": N_("paid"), "fulfilled": N_("fulfilled"),
    "completed": N_("completed"), "cancelled": N_("cancelled"), "refunded": N_("refunded"),
    "requires_capture": N_("authorised"), "succeeded": N_("succeeded"), "failed": N_("failed"),
    "canceled": N_("cancelled"), "pending": N_("pending"), "disabled": N_("disabled"),
    "expired": N_("expired"), "partial": N_("partly"), "full": N_("in full"),
    "none": N_("none"), "percent": N_("percent off"), "fixed": N_("amount off"),
    # promotion kinds (haina.marketing.schemas.PromotionKind; percent and fixed above)
    "threshold": N_("spend threshold"), "buy_x_get_y": N_("buy X get Y"),
    "bundle": N_("bundle"), "tier_price": N_("tier price"), "first_order": N_("first order"),
    "free_shipping": N_("free shipping"), "paused": N_("paused"),
    # booking states (haina.o2o.lifecycle; completed, cancelled and expired above)
    "held": N_("held"), "confirmed": N_("confirmed"), "checked_in": N_("checked in"),
    # channels
    "web": N_("web"), "mini_program": N_("mini program"), "pos": N_("point of sale"),
    "app": N_("app"), "marketplace": N_("marketplace"),
    # points entries
    "earn": N_("earned"), "redeem": N_("redeemed"), "restore": N_("restored"),
    "expire": N_("expired"), "adjust": N_("adjusted"), "clawback": N_("clawed back"),
    # staff roles
    "owner": N_("owner"), "staff": N_("staff"), "read-only": N_("read-only"),
    # scopes' components (haina.core.context.COMPONENTS) and app categories
    "catalog": N_("products"), "inventory": N_("stock"), "payments": N_("payments"),
    "ledger": N_("ledger"), "events": N_("event log"), "analytics": N_("customer analytics"),
    "marketing": N_("marketing"), "geo": N_("service points"),
    "crossborder": N_("cross-border"), "settings": N_("settings"),
    "storefront": N_("storefront"),
    # qualification files of cross-border brands (haina.crossborder.lifecycle)
    "brand_submitted": N_("submitted"), "brand_approved": N_("approved"),
    "brand_rejected": N_("turned down"), "brand_revoked": N_("revoked"),
    "trademark_registration": N_("trademark registration"),
    "business_licence": N_("business licence"), "origin_certificate": N_("certificate of origin"),
    "agency_agreement": N_("agency agreement"), "product_registration": N_("product registration"),
    "other": N_("other document"),
    # the fit plots
    "clv_distribution": N_("Distribution of customer lifetime value"),
    "p_alive_vs_recency": N_("Probability alive by recency and frequency"),
    "holdout_fit": N_("Model check on the held-out months"),
}


def label(key: str) -> str:
    """The English label of a key (the key itself when it has none)."""
    return LABELS.get(key, key)

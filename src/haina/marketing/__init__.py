"""Marketing: coupons now (codes, limits, validity, minimum spend, claims inside the order's
transaction); promotions, the pricing engine and campaigns come next (docs/ROADMAP.md)."""

"""Campaigns (issue 12): a coupon issued to a segment's consenting members, a randomised
holdout that gets nothing, and the lift measured against it (docs/marketing.md)."""

"""The buyer's side of Haina: publishable keys per sales channel, buyers signed in by phone,
and the ``/store/v1`` API a provider's app or mini-program calls (docs/storefront.md)."""

"""Personal information rights (PIPL): data requests (export, erasure) composed across the
modules, the apps' acknowledgements, and retention. See docs/privacy.md."""

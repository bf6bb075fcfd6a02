"""Haina: an open commerce platform. 海纳百川 — the sea takes in a hundred rivers."""

__version__ = "0.1.0"

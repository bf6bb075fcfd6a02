"""Tests of haina.analytics (a package so that its conftest and module names stay its own)."""

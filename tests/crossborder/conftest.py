from crossborder_support import scanned  # noqa: F401  (the fixture, for every test here)

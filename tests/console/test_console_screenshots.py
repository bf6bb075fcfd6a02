"""The contract's screenshots: every page the browser tests check (and so save, with
HAINA_SCREENSHOTS=1) at desk and phone width is shown in the README, and every screenshot the
README shows is in docs/screenshots. No database, no browser: it reads the files."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_checked_page_is_in_the_readme_at_both_widths_and_every_image_exists():
    browser = (ROOT / "tests" / "e2e" / "test_console_browser.py").read_text()
    checked = set(re.findall(r"\bcheck\((?:page|owner), \"([a-z0-9-]+)\"\)", browser))
    assert len(checked) >= 30  # the scan finds them
    readme = (ROOT / "README.md").read_text()
    shown = set(re.findall(r"\(docs/screenshots/([a-z0-9-]+\.png)\)", readme))
    missing = sorted(f"{name}-{width}.png" for name in checked for width in ("desk", "phone")
                     if f"{name}-{width}.png" not in shown)
    assert not missing, f"add these to the README's console gallery: {missing}"
    absent = sorted(f for f in shown if not (ROOT / "docs" / "screenshots" / f).is_file())
    assert not absent, f"run the browser tests with HAINA_SCREENSHOTS=1: {absent}"

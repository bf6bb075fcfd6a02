"""Reading the forms of a real server's pages (shared by the end-to-end tests)."""

from __future__ import annotations

import html
import re


def form_fields(page: str, action: str) -> dict[str, str]:
    """The hidden and valued inputs of the form posting to ``action`` (no button values)."""
    start = page.index(f'action="{action}"')
    form = page[start:page.index("</form>", start)]
    return {name: html.unescape(value)
            for name, value in re.findall(r'name="(\w+)" value="([^"]*)"', form)
            if name != "decision"}

"""The console's catalog and formats: every string the templates and code show is in the
zh_CN catalog and translated, the committed .mo is the .po compiled, and money, numbers and
dates follow the locale. Also the server-drawn charts: well-formed SVG that names itself."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from haina.console import charts
from haina.console.i18n import LOCALES, Formats, pick
from haina.core.money import Money

HAINA = Path(charts.__file__).resolve().parents[1]
PO = LOCALES / "zh_CN" / "LC_MESSAGES" / "console.po"
MO = PO.with_suffix(".mo")


def _used() -> set[str]:
    """What ``make console-messages`` extracts (src/haina/console/babel.cfg)."""
    method_map = [("console/**.py", "python"), ("web/templates/console/**.html", "jinja2")]
    options = {"web/templates/console/**.html": {"extensions": "jinja2.ext.i18n"}}
    found = extract_from_dir(HAINA, method_map, options, keywords={"_": None, "N_": None,
                                                                   "_t": (2,), "gettext": None})
    return {message if isinstance(message, str) else message[0]
            for _, _, message, _, _ in found}


def test_every_string_shown_is_in_the_chinese_catalog_and_translated():
    with PO.open("rb") as f:
        catalog = read_po(f)
    used = _used()
    assert len(used) > 150
    missing = sorted(m for m in used if m not in catalog)
    untranslated = sorted(m.id for m in catalog if m.id and (not m.string or m.fuzzy))
    assert missing == [], "run `make console-messages` and translate: " + ", ".join(missing)
    assert untranslated == []


def test_the_committed_mo_is_the_po_compiled():
    with PO.open("rb") as f:
        po = {m.id: m.string for m in read_po(f) if m.id}
    with MO.open("rb") as f:
        mo = {m.id: m.string for m in read_mo(f) if m.id}
    assert mo == po, "run `make console-messages` (pybabel compile) and commit console.mo"


def test_money_numbers_and_dates_follow_the_locale():
    en, zh = Formats("en"), Formats("zh")
    price = Money(amount="12345.60", currency="CNY")
    assert en.money(price) == "CN¥12,345.60" and zh.money(price) == "¥12,345.60"
    assert en.money(Money(amount="9.99", currency="USD")) == "$9.99"
    assert zh.money(Money(amount="9.99", currency="USD")) == "US$9.99"
    assert en.number(1234567) == "1,234,567" and en.percent(0.256) == "26%"
    day = dt.date(2026, 11, 3)
    assert en.date(day) == "Nov 3, 2026" and zh.date(day) == "2026年11月3日"
    assert en.week(day) == "3 Nov" and zh.week(day) == "11月3日"
    assert en.money(None) == "—"


def test_long_money_figures_are_shown_short_with_the_full_value_kept():
    """A page's big figures (the payments page's balances, the dashboard's sales): past ten
    characters, CLDR's compact form (so that it fits half a phone's width on one line)."""
    en, zh = Formats("en"), Formats("zh")
    owed = Money(amount="783811.63", currency="CNY")
    assert zh.money_figure(owed) == ("¥78.4万", "¥783,811.63")
    assert en.money_figure(owed) == ("CN¥783.8K", "CN¥783,811.63")
    assert en.money_figure(Money(amount="-1234567890.50", currency="CNY"))[0] == "-CN¥1.2B"
    assert zh.money_figure(Money(amount="1234567890.50", currency="CNY"))[0] == "¥12.3亿"
    for short in (Money(amount="999.99", currency="CNY"), Money(amount="-9950.00", currency="CNY")):
        assert zh.money_figure(short)[0] == zh.money_figure(short)[1] == zh.money(short)
    assert en.money_figure(Decimal("12345.6"), "CNY") == ("CN¥12.3K", "CN¥12,345.60")


@pytest.mark.parametrize("asked, cookie, header, lang", [
    ("zh", "en", "en-US", "zh"), (None, "zh", "en-US", "zh"), (None, None, "zh-CN,zh;q=0.9", "zh"),
    (None, None, "fr-FR,en;q=0.5", "en"), ("xx", "yy", None, "en")])
def test_the_language_is_asked_for_then_remembered_then_the_browsers(asked, cookie, header,
                                                                      lang):
    assert pick(asked, cookie, header) == lang


def test_axes_end_on_round_steps():
    assert charts.nice_max(0) == 4 and charts.nice_max(3) == 4
    assert charts.nice_max(38) == 40 and charts.nice_max(44) == 60
    assert charts.nice_max(444_210) == 600_000
    for value in (5, 17, 99, 1001, 123_456.7):
        top = charts.nice_max(value)
        assert top >= value and float(top / 4).is_integer()


def test_charts_are_well_formed_svg_that_name_themselves():
    labels = ["3 Nov", "10 Nov", "17 Nov"]
    drawn = [
        charts.bar_chart("Sales <per> week", labels, [1.0, 250.5, 0], str, str),
        charts.line_chart("Orders", labels, [3, 0, 7], str, str),
        charts.stacked_bars("Members", labels, [("new", [1, 0, 2]), ("returning", [3, 4, 0])], str),
        charts.hbars("Stages", [("active", 10), ("lapsed", 0)], str),
        charts.heatmap("Cohorts", [("2026-01", 8, [1.0, 0.5, 0.25]), ("2026-02", 4, [1.0, 0.0])],
                       str, "month"),
        charts.bar_chart("Nothing yet", [], [], str, str),
    ]
    for svg in drawn:
        root = ET.fromstring(svg)
        assert root.get("role") == "img" and root.find("{http://www.w3.org/2000/svg}title") is not None
    assert "Sales &lt;per&gt; week" in drawn[0]
    assert drawn[1].count("<circle") == 3 and drawn[2].count('class="bar s1"') == 4

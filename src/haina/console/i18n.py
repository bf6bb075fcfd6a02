"""The console's languages: English (the source strings) and Simplified Chinese (a Babel message
catalog), with dates, numbers and money formatted by Babel's CLDR data for the reader's locale.

The catalog is ``locale/zh_CN/LC_MESSAGES/console.po``; its compiled ``console.mo`` is committed
beside it (no build step before ``haina serve``), and tests/console/test_console_i18n.py fails
when the two differ or when a template uses a string the catalog lacks. After editing a
template: ``make console-messages`` (extract, update, compile), then translate the new entries.
"""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal
from pathlib import Path

from babel import Locale
from babel.dates import format_date, format_datetime, get_day_names
from babel.numbers import (
    format_compact_currency,
    format_currency,
    format_decimal,
    format_percent,
)
from babel.support import NullTranslations, Translations

from haina.core.money import Money

LOCALES = Path(__file__).resolve().parent / "locale"
DOMAIN = "console"
# the console's language codes (also the ``lang`` cookie's values) and their CLDR locales
LANGUAGES = {"en": "en", "zh": "zh_CN"}
NAMES = {"en": "English", "zh": "中文"}
# a page's big money figures longer than this are shown in the compact form (Formats.money_figure)
FIGURE_CHARS = 10


@functools.cache
def translations(lang: str) -> NullTranslations:
    if lang == "en":
        return NullTranslations()
    return Translations.load(LOCALES, [LANGUAGES[lang]], DOMAIN)


def pick(explicit: str | None, cookie: str | None, accept_language: str | None) -> str:
    """The reader's language: asked for (``?lang=``), remembered (cookie), or the browser's."""
    for value in (explicit, cookie):
        if value in LANGUAGES:
            return value
    for part in (accept_language or "").lower().split(","):
        tag = part.split(";")[0].strip()
        if tag.startswith("zh"):
            return "zh"
        if tag.startswith("en"):
            return "en"
    return "en"


class Formats:
    """Formatting for one locale, handed to the templates as ``fmt``."""

    def __init__(self, lang: str, zone: dt.tzinfo = dt.UTC) -> None:
        self.lang = lang
        self.locale = Locale.parse(LANGUAGES[lang])
        self.zone = zone  # the merchant's: dates and times are shown as they read there

    def money(self, value: Money | None) -> str:
        if value is None:
            return "—"
        return format_currency(Decimal(value.amount), value.currency, locale=self.locale)

    def money_figure(self, value: Money | Decimal | float, currency: str | None = None,
                     ) -> tuple[str, str]:
        """A big figure at the top of a page: (shown, full). Beyond :data:`FIGURE_CHARS`
        characters the shown form is CLDR's compact one, one decimal (``¥78.4万``,
        ``CN¥783.8K``), so that it fits a phone's half width on one line; the full form
        goes into a title and the text read aloud."""
        if isinstance(value, Money):
            amount, currency = Decimal(value.amount), value.currency
        else:
            amount = Decimal(value)
        assert currency is not None
        full = format_currency(amount, currency, locale=self.locale)
        if len(full) <= FIGURE_CHARS:
            return full, full
        return format_compact_currency(amount, currency, locale=self.locale,
                                       fraction_digits=1), full

    def money_short(self, amount: float, currency: str) -> str:
        """An axis tick: whole units, grouped (¥12,000)."""
        return format_currency(Decimal(round(amount)), currency, locale=self.locale,
                               format="¤#,##0", currency_digits=False)

    def number(self, value: float | int, digits: int = 0) -> str:
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(value, format=pattern, locale=self.locale)

    def percent(self, value: float) -> str:
        return format_percent(value, format="#,##0%", locale=self.locale)

    def date(self, value: dt.date | dt.datetime | None, form: str = "medium") -> str:
        if value is None:
            return "—"
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            value = value.astimezone(self.zone)
        return format_date(value, format=form, locale=self.locale)

    def week(self, value: dt.date) -> str:
        """A week's start on a chart axis: 3 Nov / 11月3日."""
        return format_date(value, format="M月d日" if self.lang == "zh" else "d MMM",
                           locale=self.locale)

    def weekday(self, iso: int) -> str:
        """An ISO weekday's name (1 = Monday): Monday / 星期一."""
        return str(get_day_names("wide", locale=self.locale)[iso - 1])

    def clock(self, value: dt.datetime) -> str:
        """A time of day as it reads where it happens (the value's own zone): 09:30."""
        return value.strftime("%H:%M")

    def datetime(self, value: dt.datetime | None) -> str:
        if value is None:
            return "—"
        return format_datetime(value, format="medium", locale=self.locale, tzinfo=self.zone)

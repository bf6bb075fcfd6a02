"""Issue 14, the contracts: the composite tax (worked examples, the CLI's JSON, the quote
route's per-line breakdown) and the ID-number check (GB 11643-1999 vectors, the CLI)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from decimal import Decimal

import pytest

from haina.crossborder.identity import Keys, id_number_problem, load_keys, mask
from haina.crossborder.tax import composite_tax, tax_summary

VALID_IDS = ["11010519491231002X", "360403198001010075", "440300199003071234"]


def test_thirteen_percent_vat_and_no_consumption_tax():
    # VAT 1000 × 13 % × 70 % = 91.00; no consumption tax, no tariff
    assert tax_summary([composite_tax(Decimal("1000.00"), Decimal("0.13"), Decimal("0"))]) == {
        "consumption_tax": "0.00", "vat": "91.00", "tariff": "0.00", "total": "91.00"}


def test_cosmetics_at_fifteen_percent_consumption_tax():
    # consumption tax 1000 ÷ 0.85 × 0.15 = 176.470588… × 70 % = 123.529… → 123.53;
    # VAT (1000 + 176.470588…) × 13 % = 152.941176… × 70 % = 107.058… → 107.06
    line = composite_tax(Decimal("1000.00"), Decimal("0.13"), Decimal("0.15"))
    assert (line.consumption_tax, line.vat, line.tariff) == (
        Decimal("123.53"), Decimal("107.06"), Decimal("0.00"))
    assert tax_summary([line])["total"] == "230.59"


def test_each_line_is_rounded_once_and_the_order_sums_the_rounded_lines():
    # 0.05 × 13 % × 70 % = 0.00455 → 0.00 per line (half-even at the fen): three lines, 0.00
    lines = [composite_tax(Decimal("0.05"), Decimal("0.13")) for _ in range(3)]
    assert tax_summary(lines)["total"] == "0.00"
    # 0.15 at once: 0.01365 → 0.01
    assert tax_summary([composite_tax(Decimal("0.15"), Decimal("0.13"))])["total"] == "0.01"


@pytest.mark.parametrize("rate", [Decimal("1"), Decimal("-0.1"), Decimal("0.12345")])
def test_impossible_rates_are_refused(rate):
    with pytest.raises(ValueError):
        composite_tax(Decimal("10.00"), rate)


@pytest.mark.parametrize("number", VALID_IDS)
def test_valid_id_numbers(number):
    assert id_number_problem(number) is None


@pytest.mark.parametrize("number,reason", [
    ("110105194912310021", "check character"),   # bad check character (X expected)
    ("110105194902300029", "not a real date"),   # 30 February
    ("11010519491231002", "18 characters"),      # wrong length
    ("1101051949123100211", "18 characters"),
    ("11010519491231002Y", "17 digits"),
    ("990105194912310023", "region"),
    ("110105209912310025", "not a possible"),    # born in the future
])
def test_invalid_id_numbers_name_the_reason(number, reason):
    assert reason in (id_number_problem(number, today=dt.date(2026, 12, 1)) or "")


def test_an_id_number_is_masked_to_its_first_and_last_four():
    assert mask("360403198001010071") == "3604**********0071"


def test_sealed_numbers_open_under_their_key_after_rotation_and_the_index_stays():
    old = load_keys("k1:" + "A" * 43 + "=", "B" * 43 + "=")
    key_id, cipher = old.seal(VALID_IDS[0])
    assert VALID_IDS[0] not in cipher and key_id == "k1"
    rotated = load_keys("k2:" + "C" * 43 + "=,k1:" + "A" * 43 + "=", "B" * 43 + "=")
    assert rotated.current == "k2" and rotated.open(key_id, cipher) == VALID_IDS[0]
    assert rotated.blind_index(VALID_IDS[0]) == old.blind_index(VALID_IDS[0])
    assert isinstance(rotated, Keys) and rotated.seal(VALID_IDS[0])[0] == "k2"
    with pytest.raises(ValueError, match="32 bytes"):
        load_keys("k1:c2hvcnQ=", "B" * 43 + "=")


def _haina(capsys, monkeypatch, *args: str) -> tuple[int, str, str]:
    """``haina crossborder …`` through the command's own entry point (its exit status and
    one-line errors included), in this process: a subprocess per call costs seconds."""
    from haina.cli import main
    monkeypatch.setattr(sys, "argv", ["haina", "crossborder", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_the_command_line_contract(capsys, monkeypatch):
    code, out, err = _haina(capsys, monkeypatch, "tax", "--amount", "1000", "--vat-rate",
                            "0.13", "--consumption-rate", "0.15", "--json")
    assert code == 0, err
    assert json.loads(out) == {"consumption_tax": "123.53", "vat": "107.06",
                               "tariff": "0.00", "total": "230.59"}
    assert list(json.loads(out)) == ["consumption_tax", "vat", "tariff", "total"]
    assert _haina(capsys, monkeypatch, "check-id", VALID_IDS[0])[:2] == (0, "valid\n")
    code, out, err = _haina(capsys, monkeypatch, "check-id", "110105194912310021")
    assert code == 1 and out == ""
    assert "check character" in err and len(err.strip().splitlines()) == 1
    code, _, err = _haina(capsys, monkeypatch, "tax", "--amount", "10", "--vat-rate", "abc")
    assert code == 1 and "--vat-rate" in err


def test_the_command_runs_as_a_program():
    out = subprocess.run([sys.executable, "-m", "haina.cli", "crossborder", "tax", "--amount",
                          "1000", "--json"], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ))
    assert out.returncode == 0 and json.loads(out.stdout)["total"] == "91.00"


def test_the_quote_route_breaks_the_tax_down_per_line(client):
    r = client.post("/v1/crossborder/tax-quotes", json={"lines": [
        {"amount": "1000.00", "vat_rate": "0.13", "consumption_rate": "0.15"},
        {"amount": "1000.00"}]})
    assert r.status_code == 200, r.text
    q = r.json()
    assert [(ln["consumption_tax"], ln["vat"], ln["total"]) for ln in q["lines"]] == [
        ("123.53", "107.06", "230.59"), ("0.00", "91.00", "91.00")]
    assert (q["consumption_tax"], q["vat"], q["tariff"], q["total"]) == (
        "123.53", "198.06", "0.00", "321.59")
    assert q["lines"][1]["vat_rate"] == "0.13" and q["lines"][1]["consumption_rate"] == "0"
    bad = client.post("/v1/crossborder/tax-quotes", json={"lines": [
        {"amount": "1.005", "vat_rate": "0.13"}]})
    assert bad.status_code == 422
    bad = client.post("/v1/crossborder/tax-quotes", json={"lines": [
        {"amount": "1.00", "vat_rate": "1.5"}]})
    assert bad.status_code == 422

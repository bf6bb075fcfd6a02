"""The module graph of docs/architecture.md, kept true by import-linter's contracts
(.importlinter): layers without cycles, no module reading another's models, a pure clv."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(src: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run([str(LINT), "--no-cache", "--no-logo", str(ROOT / ".importlinter")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_the_import_contracts_hold():
    result = _lint(ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr


def _lint_with_orders_importing(tmp_path: Path, line: str) -> subprocess.CompletedProcess:
    """Lint a copy of the package in which orders gains ``line``."""
    shutil.copytree(ROOT / "src" / "haina", tmp_path / "haina",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (tmp_path / "haina" / "orders" / "shortcut.py").write_text(line + "  # noqa: F401\n")
    return _lint(tmp_path)


def test_a_cross_module_models_import_breaks_them(tmp_path):
    result = _lint_with_orders_importing(tmp_path,
                                         "from haina.payments.models import PaymentIntent")
    assert result.returncode != 0
    assert "orders does not import another module's models BROKEN" in result.stdout
    assert "haina.orders.shortcut -> haina.payments.models" in result.stdout


def test_an_import_upwards_breaks_the_layers(tmp_path):
    result = _lint_with_orders_importing(tmp_path, "from haina.payments import service")
    assert result.returncode != 0
    assert "haina.orders is not allowed to import haina.payments" in result.stdout

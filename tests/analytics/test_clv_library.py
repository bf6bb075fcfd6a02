"""``haina.analytics.clv`` is a library of pure computation: it imports no database code and no
other part of the platform, so it can be used (and benchmarked) on its own."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import haina.analytics.clv as clv

ALLOWED_HAINA = ("haina.analytics.clv", "haina.core.money")


def imported_names(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: inside the package by construction, unless it climbs out
                assert node.level == 1, f"{path.name} imports from outside clv: {ast.unparse(node)}"
                continue
            names.add(node.module or "")
    return names


def test_the_clv_library_imports_no_database_and_no_other_haina_module():
    files = sorted(Path(clv.__file__).parent.glob("*.py"))
    assert len(files) > 5
    for path in files:
        for name in imported_names(path):
            assert not name.startswith("sqlalchemy"), f"{path.name} imports {name}"
            if name == "haina" or name.startswith("haina."):
                assert name.startswith(ALLOWED_HAINA), f"{path.name} imports {name}"


def test_importing_every_clv_module_loads_no_sqlalchemy():
    modules = sorted(p.stem for p in Path(clv.__file__).parent.glob("*.py") if p.stem != "__init__")
    code = ("import sys\n"
            + "".join(f"import haina.analytics.clv.{m}\n" for m in modules)
            + "print(' '.join(sorted(m for m in sys.modules if m.startswith(('sqlalchemy', "
              "'haina.')) and not m.startswith(('haina.analytics.clv', 'haina.core.money')))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()
    assert loaded == ["haina.analytics"], loaded  # the parent package (a docstring) only

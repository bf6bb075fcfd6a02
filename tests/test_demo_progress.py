"""`make run` (``haina serve --demo``) is not silent while the demo loads (issue 9): on a
terminal Rich draws bars; anywhere else (a pipe, a log file, an IDE, CI) plain progress lines."""

from __future__ import annotations

import io
import re

from rich.console import Console

from haina.demo import _ProgressLines


def test_the_demo_load_reports_progress_when_its_output_is_not_a_terminal(sqlite_demo_template):
    # `haina demo --quick` into a fresh database, its output a string buffer (not a terminal):
    # the run's one load of the demo on SQLite, whose database the demo tests copy
    # (tests/support.py, DemoTemplate)
    done = sqlite_demo_template
    assert done.code == 0, done.stderr
    lines = done.stderr.splitlines()
    # it says what it starts before the long part, then how far it is, then what it made
    assert lines[0].startswith("demo merchant demo-tires: loading")
    counts = [line for line in lines if re.match(r"demo-tires: members and orders \d+/\d+ ", line)]
    assert len(counts) >= 5, done.stderr
    assert any(re.match(r"demo-tires: points and tiers \d+/\d+ ", line) for line in lines)
    assert any(line.startswith("demo-beauty: members and orders") for line in lines)
    assert "demo merchant demo-tires: created" in lines


def test_progress_lines_come_at_each_tenth_and_not_for_every_unit():
    out = io.StringIO()
    lines = _ProgressLines(Console(file=out, width=200), every=3600)
    task = lines.add_task("loading", total=1000)
    for _ in range(1000):
        lines.advance(task)
    said = out.getvalue().splitlines()
    assert [s.split()[1] for s in said] == [f"{n}/1000" for n in range(0, 1001, 100)]

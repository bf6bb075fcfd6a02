"""The ``haina analytics`` contract: ``fit --json`` prints only the JSON object; bad input is one
line on stderr and exit status 1, never a traceback.

The cases run the command in this process (Typer's ``CliRunner``, as ``python -m
haina.analytics.cli`` does: a new interpreter costs ~2 s of CPU in imports); one case runs the
real entry point in a child process, where anything the imports write to stdout or stderr would
show (docs/testing.md, "The command line in tests")."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from haina.analytics.cli import app as analytics_app


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """``python -m haina.analytics.cli`` on ``args``, in this process: exit code and outputs."""
    done = CliRunner().invoke(analytics_app, list(args))
    return subprocess.CompletedProcess(args, done.exit_code, done.stdout, done.stderr)


def run_process(*args: str) -> subprocess.CompletedProcess:
    """The same in a new interpreter: the entry point itself."""
    return subprocess.run(
        [sys.executable, "-m", "haina.analytics.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def summary_csv(tmp_path_factory, cdnow_with_monetary):
    path = tmp_path_factory.mktemp("cli") / "cdnow.csv"
    cdnow_with_monetary.assign(segment="x").to_csv(path)  # an extra column, ignored
    return path


@pytest.fixture(scope="module")
def transactions_csv(tmp_path_factory, cdnow_transactions):
    path = tmp_path_factory.mktemp("cli") / "orders.csv"
    cdnow_transactions.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("model", "params", "n", "process"),
    [
        ("bgnbd", {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}, 2357, True),
        ("pnbd", {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}, 2357, False),
        ("gg", {"p": 6.25, "q": 3.74, "gamma": 15.44}, 946, False),
    ],
)
def test_fit_json_prints_only_the_model_object(model, params, n, process, summary_csv):
    run = run_process if process else run_cli
    done = run("fit", "--summary", str(summary_csv), "--model", model, "--json")
    assert done.returncode == 0, done.stderr
    if process:  # nothing from the imports either, on stdout or stderr
        assert done.stderr == ""
    result = json.loads(done.stdout)  # nothing but the JSON object on stdout
    assert set(result) == {"model", "params", "log_likelihood", "n", "seconds"}
    assert result["model"] == model and result["n"] == n
    assert list(result["params"]) == list(params)
    for name, value in params.items():
        assert result["params"][name] == pytest.approx(value, rel=2e-3)
    assert result["log_likelihood"] < 0 and result["seconds"] >= 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--summary", "missing.csv", "--model", "bgnbd", "--json"], "no such file"),
        (["--summary", "{summary}", "--model", "nbd", "--json"], "unknown model"),
        (["--summary", "{orders}", "--model", "pnbd", "--json"], "missing column"),
        (["--summary", "{orders}", "--model", "gg"], "missing column"),
        (["--model", "bgnbd", "--json"], "--summary"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_1(args, message, summary_csv, transactions_csv):
    args = [a.format(summary=summary_csv, orders=transactions_csv) for a in args]
    done = run_cli("fit", *args)
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in done.stderr


def test_fit_without_json_prints_a_table_with_standard_errors(summary_csv):
    result = CliRunner().invoke(
        analytics_app, ["fit", "--summary", str(summary_csv), "--model", "bgnbd"]
    )
    assert result.exit_code == 0, result.output
    assert "std. error" in result.output and "alpha" in result.output and "0.01256" in result.output


def test_fit_plots_png_and_svg(summary_csv, tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        analytics_app,
        [
            "fit",
            "--summary",
            str(summary_csv),
            "--model",
            "gg",
            "--freq",
            "W",
            "--plot",
            str(tmp_path / "gg"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "gg").iterdir()) == [
        "clv_distribution.png",
        "clv_distribution.svg",
    ]
    result = runner.invoke(
        analytics_app,
        ["fit", "--summary", str(summary_csv), "--model", "pnbd", "--plot", str(tmp_path / "pnbd")],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "pnbd" / "p_alive_vs_recency.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "pnbd" / "p_alive_vs_recency.svg").read_text().lstrip().startswith("<?xml")


def test_summarize_writes_a_calibration_summary_that_fit_reads(transactions_csv, tmp_path):
    out = tmp_path / "summary.csv"
    runner = CliRunner()
    result = runner.invoke(
        analytics_app,
        [
            "summarize",
            str(transactions_csv),
            "--customer-col",
            "customer_id",
            "--date-col",
            "date",
            "--amount-col",
            "dollar_value",
            "--freq",
            "W",
            "--calibration-end",
            "1997-09-30",
            "--observation-end",
            "1998-06-30",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    header = out.read_text().splitlines()[0].split(",")
    assert header == [
        "customer_id",
        "frequency_cal",
        "recency_cal",
        "T_cal",
        "monetary_value_cal",
        "frequency_holdout",
        "monetary_value_holdout",
        "duration_holdout",
    ]
    result = runner.invoke(
        analytics_app,
        [
            "fit",
            "--summary",
            str(out),
            "--model",
            "bgnbd",
            "--json",
            "--plot",
            str(tmp_path / "plots"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n"] == 23570
    assert (tmp_path / "plots" / "holdout_fit.svg").exists()


def test_summarize_prints_a_table(transactions_csv):
    result = CliRunner().invoke(
        analytics_app,
        ["summarize", str(transactions_csv), "--amount-col", "dollar_value", "--rows", "3"],
    )
    assert result.exit_code == 0, result.output
    assert "23570 customers" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.csv"], "no such file"),
        (["{orders}", "--customer-col", "client"], "client"),
        (["{orders}", "--freq", "M"], "--freq"),
        (
            ["{orders}", "--calibration-end", "1998-07-01", "--observation-end", "1998-06-30"],
            "after",
        ),
    ],
)
def test_summarize_bad_input_is_one_line_and_exit_1(args, message, transactions_csv):
    done = run_cli("summarize", *[a.format(orders=transactions_csv) for a in args])
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in done.stderr

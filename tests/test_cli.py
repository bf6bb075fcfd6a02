"""The `haina` command: its contract with outside checks, and one-line errors for bad input.

Most cases run ``haina.cli.main`` in this process (``support.run_cli``: a new interpreter costs
~1.3 s of CPU to import); the first test and `serve --demo` run the real command."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

import httpx
import pytest
from support import run_cli

from haina.core.pgtemp import free_port


def haina(url: str, *args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "haina.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "HAINA_DATABASE_URL": url, **(env or {})})


def test_tenants_and_tokens_from_the_command_line(db_url):
    created = haina(db_url, "tenants", "create", "tire-world")
    assert created.returncode == 0, created.stderr
    token = haina(db_url, "token", "create", "--tenant", "tire-world", "--scopes", "*")
    assert token.returncode == 0
    assert re.fullmatch(r"hn_[A-Za-z0-9_-]{40,}\n", token.stdout)  # only the token on stdout
    listed = haina(db_url, "tenants", "list")
    assert "tire-world" in listed.stdout


@pytest.mark.parametrize("args,message", [
    (["tenants", "create", "Bad Slug!"], "slug"),
    (["token", "create", "--tenant", "nobody", "--scopes", "*"], "no tenant 'nobody'"),
    (["token", "create", "--tenant", "shop-a", "--scopes", "orders:fly"], "unknown scope"),
    (["tenants", "create", "shop-a"], "already exists"),
    (["no-such-command"], "No such command"),
])
def test_bad_input_is_one_line_on_stderr_and_exit_1(db_url, args, message, monkeypatch, capsys):
    assert run_cli(db_url, ["tenants", "create", "shop-a"], monkeypatch, capsys)[0] == 0
    code, _, stderr = run_cli(db_url, args, monkeypatch, capsys)
    assert code != 0
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], stderr
    assert "Traceback" not in stderr


def test_commands_refuse_a_database_that_is_behind(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    code, _, stderr = run_cli(url, ["tenants", "create", "shop"], monkeypatch, capsys)
    assert code == 1
    assert "run `haina migrate`" in stderr and len(stderr.strip().splitlines()) == 1
    assert run_cli(url, ["migrate"], monkeypatch, capsys)[0] == 0
    assert run_cli(url, ["tenants", "create", "shop"], monkeypatch, capsys)[0] == 0


def test_serve_with_demo_prints_url_and_a_working_token(tmp_path, sqlite_demo_template):
    """What `make run` does, on a SQLite file with the quick demo data loaded first (a copy of
    the run's demo database, made by `haina demo --quick`: tests/test_demo_progress.py)."""
    (tmp_path / "var").mkdir()
    shutil.copyfile(sqlite_demo_template.built(), tmp_path / "var" / "haina.db")
    url = f"sqlite:///{tmp_path / 'var' / 'haina.db'}"
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "haina.cli", "serve", "--demo"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "HAINA_DATABASE_URL": url, "HAINA_PORT": str(port)})
    try:
        output = ""
        deadline = time.time() + 180
        while "merchant console:" not in output and time.time() < deadline:
            output += proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in output
        assert f"merchant console: http://127.0.0.1:{port}/console" in output
        token = re.search(r"token: (hn_\S+)", output).group(1)
        email, password = re.search(r"sign in as (\S+), password (\S+)", output).groups()
        # waits, not speed checks: a loaded machine starts the server slowly
        started = time.time() + 180
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/v1/products?q=轮胎",
                              headers={"Authorization": f"Bearer {token}"}, timeout=60)
                break
            except httpx.ConnectError:
                assert time.time() < started, "the server did not start listening"
                time.sleep(0.1)
        assert r.status_code == 200 and len(r.json()["data"]) > 0
        # the printed owner account signs in to the console
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as browser:
            page = browser.get("/console")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
            r = browser.post("/login", data={"email": email, "password": password,
                                             "csrf_token": csrf, "next": "/console"})
            assert r.status_code == 303 and "haina_session" in r.cookies
            assert "<h1>Dashboard</h1>" in browser.get("/console").text
    finally:
        proc.terminate()
        proc.wait(60)  # a stop, not a speed check: a loaded machine stops slowly


def test_token_list_shows_a_tenants_tokens_but_never_a_secret(db_url, monkeypatch, capsys):
    def cli(*argv: str) -> tuple[int, str, str]:
        return run_cli(db_url, list(argv), monkeypatch, capsys)

    assert cli("tenants", "create", "shop-a")[0] == 0
    assert cli("tenants", "create", "shop-b")[0] == 0
    first = cli("token", "create", "--tenant", "shop-a", "--scopes", "orders:write",
                "--label", "till")[1].strip()
    second = cli("token", "create", "--tenant", "shop-a")[1].strip()
    other = cli("token", "create", "--tenant", "shop-b")[1].strip()
    from haina.core.db import make_engine
    engine = make_engine(db_url)
    with engine.connect() as conn:
        ids = dict(conn.exec_driver_sql("SELECT label, id FROM api_tokens").all())
    engine.dispose()
    assert cli("token", "revoke", ids["till"])[0] == 0

    # a wide table, as COLUMNS=200 gives the command in a process of its own
    from rich.console import Console

    from haina import cli as commands
    monkeypatch.setattr(commands, "out", Console(soft_wrap=True, width=200))
    code, listed, stderr = cli("token", "list", "--tenant", "shop-a")
    assert code == 0, stderr
    lines = [line for line in listed.splitlines() if "tok_" in line]
    assert len(lines) == 2, listed  # shop-a's two tokens, not shop-b's
    till = next(line for line in lines if "till" in line)
    assert ids["till"] in till and "orders:write" in till
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d.*\d{4}-\d\d-\d\dT", till)  # created, revoked
    assert "*" in next(line for line in lines if "till" not in line)
    for secret in (first, second, other):
        assert secret.startswith("hn_")
        assert secret[3:] not in listed and secret[:10] not in listed
    assert "hn_" not in listed

    code, _, stderr = cli("token", "list", "--tenant", "nobody")
    assert code == 1 and "no tenant 'nobody'" in stderr


@pytest.mark.parametrize("args", [[], ["demo"], ["serve"], ["token", "list"], ["analytics"]])
def test_help_has_no_stray_type_after_flags(args, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "120")
    code, stdout, stderr = run_cli(f"sqlite:///{tmp_path / 'none.db'}", [*args, "--help"],
                                   monkeypatch, capsys)
    assert code == 0, stderr
    assert "--help" in stdout
    assert "<bool>" not in stdout, stdout


@pytest.mark.parametrize("args", [
    ["tenants", "list"], ["token", "list", "--tenant", "x"], ["token", "create", "--tenant", "x"],
    ["demo", "--quick"],
])
def test_a_command_run_elsewhere_makes_no_empty_database(tmp_path, args, monkeypatch, capsys):
    """The default URL (sqlite:///./var/haina.db) is relative to the current directory: a
    command that needs a database says where it looked instead of creating an empty one."""
    monkeypatch.chdir(tmp_path)
    code, _, stderr = run_cli(None, args, monkeypatch, capsys)  # HAINA_DATABASE_URL unset
    assert code == 1
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "run `haina migrate`" in lines[0], stderr
    assert str(tmp_path / "var" / "haina.db") in lines[0]
    assert not (tmp_path / "var").exists()
    # migrate is the command that creates it
    assert run_cli(None, ["migrate"], monkeypatch, capsys)[0] == 0
    assert (tmp_path / "var" / "haina.db").stat().st_size > 0

"""The `haina` command: its contract with outside checks, and one-line errors for bad input."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import httpx
import pytest

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
def test_bad_input_is_one_line_on_stderr_and_exit_1(db_url, args, message):
    assert haina(db_url, "tenants", "create", "shop-a").returncode == 0
    result = haina(db_url, *args)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_commands_refuse_a_database_that_is_behind(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = haina(url, "tenants", "create", "shop")
    assert result.returncode == 1
    assert "run `haina migrate`" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert haina(url, "migrate").returncode == 0
    assert haina(url, "tenants", "create", "shop").returncode == 0


def test_serve_with_demo_prints_url_and_a_working_token(tmp_path):
    """What `make run` does, on a fresh SQLite file (quick demo data loaded first)."""
    url = f"sqlite:///{tmp_path / 'var' / 'haina.db'}"
    assert haina(url, "migrate").returncode == 0
    assert haina(url, "demo", "--quick").returncode == 0
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
        proc.wait(10)


def test_token_list_shows_a_tenants_tokens_but_never_a_secret(db_url):
    assert haina(db_url, "tenants", "create", "shop-a").returncode == 0
    assert haina(db_url, "tenants", "create", "shop-b").returncode == 0
    first = haina(db_url, "token", "create", "--tenant", "shop-a", "--scopes", "orders:write",
                  "--label", "till").stdout.strip()
    second = haina(db_url, "token", "create", "--tenant", "shop-a").stdout.strip()
    other = haina(db_url, "token", "create", "--tenant", "shop-b").stdout.strip()
    from haina.core.db import make_engine
    engine = make_engine(db_url)
    with engine.connect() as conn:
        ids = dict(conn.exec_driver_sql("SELECT label, id FROM api_tokens").all())
    engine.dispose()
    assert haina(db_url, "token", "revoke", ids["till"]).returncode == 0

    listed = haina(db_url, "token", "list", "--tenant", "shop-a", env={"COLUMNS": "200"})
    assert listed.returncode == 0, listed.stderr
    lines = [line for line in listed.stdout.splitlines() if "tok_" in line]
    assert len(lines) == 2, listed.stdout  # shop-a's two tokens, not shop-b's
    till = next(line for line in lines if "till" in line)
    assert ids["till"] in till and "orders:write" in till
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d.*\d{4}-\d\d-\d\dT", till)  # created, revoked
    assert "*" in next(line for line in lines if "till" not in line)
    for secret in (first, second, other):
        assert secret[3:] not in listed.stdout and secret[:10] not in listed.stdout
    assert "hn_" not in listed.stdout

    missing = haina(db_url, "token", "list", "--tenant", "nobody")
    assert missing.returncode == 1 and "no tenant 'nobody'" in missing.stderr


@pytest.mark.parametrize("args", [[], ["demo"], ["serve"], ["token", "list"], ["analytics"]])
def test_help_has_no_stray_type_after_flags(args):
    result = subprocess.run([sys.executable, "-m", "haina.cli", *args, "--help"],
                            capture_output=True, text=True, env={**os.environ, "COLUMNS": "120"})
    assert result.returncode == 0, result.stderr
    assert "--help" in result.stdout
    assert "<bool>" not in result.stdout, result.stdout


@pytest.mark.parametrize("args", [
    ["tenants", "list"], ["token", "list", "--tenant", "x"], ["token", "create", "--tenant", "x"],
    ["demo", "--quick"],
])
def test_a_command_run_elsewhere_makes_no_empty_database(tmp_path, args):
    """The default URL (sqlite:///./var/haina.db) is relative to the current directory: a
    command that needs a database says where it looked instead of creating an empty one."""
    env = {k: v for k, v in os.environ.items() if k != "HAINA_DATABASE_URL"}
    result = subprocess.run([sys.executable, "-m", "haina.cli", *args], capture_output=True,
                            text=True, cwd=tmp_path, env=env, timeout=120)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "run `haina migrate`" in lines[0], result.stderr
    assert str(tmp_path / "var" / "haina.db") in lines[0]
    assert not (tmp_path / "var").exists()
    # migrate is the command that creates it
    assert subprocess.run([sys.executable, "-m", "haina.cli", "migrate"], cwd=tmp_path,
                          env=env, capture_output=True, timeout=120).returncode == 0
    assert (tmp_path / "var" / "haina.db").stat().st_size > 0

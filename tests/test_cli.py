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
        deadline = time.time() + 60
        while "token" not in output and time.time() < deadline:
            output += proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in output
        token = re.search(r"token: (hn_\S+)", output).group(1)
        for _ in range(100):
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/v1/products?q=轮胎",
                              headers={"Authorization": f"Bearer {token}"})
                break
            except httpx.ConnectError:
                time.sleep(0.1)
        assert r.status_code == 200 and len(r.json()["data"]) > 0
    finally:
        proc.terminate()
        proc.wait(10)

"""The open platform's command-line contract (issue 10), checked as an outside check would:
`haina staff create` reads the password on stdin, `haina apps create … --json` prints the
client's credentials, and the authorization code flow then runs against a real server. The
bad-input cases run the command in this process (``support.run_cli``)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from oauth_flow import REDIRECT, authorize_url, form_fields, pkce
from support import run_cli

from haina.core.pgtemp import free_port


def haina(url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "haina.cli", *args], capture_output=True,
                          text=True, timeout=120, input=stdin,
                          env={**os.environ, "HAINA_DATABASE_URL": url, "COLUMNS": "200"})


def test_staff_and_apps_from_the_command_line_then_the_flow_on_a_real_server(tmp_path):
    url = f"sqlite:///{tmp_path / 'haina.db'}"
    assert haina(url, "migrate").returncode == 0
    assert haina(url, "tenants", "create", "acme").returncode == 0
    made = haina(url, "staff", "create", "--tenant", "acme", "--email", "boss@acme.example",
                 stdin="a long enough password\n")
    assert made.returncode == 0, made.stderr
    created = haina(url, "apps", "create", "--name", "Win-back", "--redirect-uri", REDIRECT,
                    "--scopes", "orders:read members:read", "--json")
    assert created.returncode == 0, created.stderr
    creds = json.loads(created.stdout)
    assert set(creds) == {"client_id", "client_secret"}
    assert creds["client_id"] in haina(url, "apps", "list").stdout

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "haina.cli", "serve"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "HAINA_DATABASE_URL": url, "HAINA_PORT": str(port)})
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=10) as browser:
            for _ in range(200):
                try:
                    browser.get("/healthz")
                    break
                except httpx.ConnectError:
                    time.sleep(0.1)
            verifier, challenge = pkce()
            start = authorize_url(creds["client_id"], challenge)
            r = browser.get(start)
            assert r.status_code == 302 and r.headers["location"].startswith("/login?next=")
            login_page = browser.get(r.headers["location"])
            fields = form_fields(login_page.text, "/login")
            fields.update(email="boss@acme.example", password="a long enough password")
            r = browser.post("/login", data=fields)
            assert r.status_code == 303
            consent = browser.get(r.headers["location"])
            fields = form_fields(consent.text, "/oauth/authorize")
            fields["decision"] = "allow"
            r = browser.post("/oauth/authorize", data=fields)
            assert r.status_code == 302 and r.headers["location"].startswith(REDIRECT)
            query = parse_qs(urlsplit(r.headers["location"]).query)
            assert query["state"] == ["st-1"]
            # the secret in the body this time (client_secret_post)
            r = browser.post("/oauth/token", data={
                "grant_type": "authorization_code", "code": query["code"][0],
                "redirect_uri": REDIRECT, "code_verifier": verifier,
                "client_id": creds["client_id"], "client_secret": creds["client_secret"]})
            assert r.status_code == 200, r.text
            token = r.json()
            assert {"access_token", "refresh_token", "expires_in", "scope"} <= set(token)
            r = browser.get("/v1/orders", headers={"Authorization": f"Bearer {token['access_token']}"})
            assert r.status_code == 200
    finally:
        proc.terminate()
        proc.wait(60)  # a stop, not a speed check


@pytest.mark.parametrize("args,stdin,message", [
    (["staff", "create", "--tenant", "acme", "--email", "x@acme.example"], "short\n",
     "10 to 1024 characters"),
    (["staff", "create", "--tenant", "acme", "--email", "not-an-email"], "long enough pw\n",
     "not an email"),
    (["staff", "create", "--tenant", "nobody", "--email", "x@acme.example"], "long enough pw\n",
     "no tenant 'nobody'"),
    (["staff", "create", "--tenant", "acme", "--email", "x@acme.example"], "", "no password"),
    (["apps", "create", "--name", "A", "--redirect-uri", "http://evil.example/cb",
      "--scopes", "orders:read"], None, "https"),
    (["apps", "create", "--name", "A", "--redirect-uri", REDIRECT, "--scopes", "*"], None,
     "named scopes"),
    (["apps", "create", "--name", "A", "--redirect-uri", REDIRECT, "--scopes", "orders:read",
      "--category", "astrology"], None, "category must be one of"),
])
def test_bad_input_is_one_line_and_exit_1(sqlite_template, tmp_path, args, stdin, message,
                                         monkeypatch, capsys):
    """In this process (``run_cli``, stdin a string: not a terminal, as in the process above):
    three interpreters per case took ~5 s of CPU."""
    shutil.copyfile(sqlite_template, tmp_path / "haina.db")
    url = f"sqlite:///{tmp_path / 'haina.db'}"
    assert run_cli(url, ["tenants", "create", "acme"], monkeypatch, capsys)[0] == 0
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin or ""))
    code, out, err = run_cli(url, args, monkeypatch, capsys)
    assert code == 1, out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err


def test_staff_set_password_replaces_it_lifts_a_lock_and_ends_sessions(db_url, engine,
                                                                       sessions, monkeypatch,
                                                                       capsys):
    """`haina staff set-password` on SQLite and PostgreSQL: the password from stdin, the
    account's lock lifted and its sessions ended, a `staff.password_reset` event; an unknown
    account (or another merchant's) and a short password are one line and exit 1."""
    from sqlalchemy import select

    from haina.core.db import transaction
    from haina.core.events import Event
    from haina.platform import service as platform
    from haina.platform import staff
    from haina.platform.models import StaffAccount, StaffSession

    def cli(args, stdin):
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        return run_cli(db_url, args, monkeypatch, capsys)

    monkeypatch.setenv("COLUMNS", "200")
    for slug in ("acme", "globex"):
        assert cli(["tenants", "create", slug], "")[0] == 0
    with transaction(sessions) as s:
        platform.create_staff(s, "acme", "clerk@acme.example", "the first password", "staff")
        platform.create_staff(s, "globex", "boss@globex.example", "the first password")
    for _ in range(staff.LOCK_AFTER):  # locked by failed sign-ins, and signed in elsewhere
        with transaction(sessions) as s, pytest.raises(staff.LoginRefused):
            staff.authenticate_staff(s, "clerk@acme.example", "wrong password")
    with transaction(sessions) as s:
        row = s.scalar(select(StaffAccount).where(StaffAccount.email == "clerk@acme.example"))
        assert row.locked_until is not None
        staff.open_session(s, row.id)
    code, out, err = cli(["staff", "set-password", "--tenant", "acme", "--email",
                          "Clerk@acme.example"], "a brand new password\n")
    assert code == 0 and "password set for clerk@acme.example at acme" in out, err
    with transaction(sessions) as s:
        signed = staff.authenticate_staff(s, "clerk@acme.example", "a brand new password")
        assert signed.locked_until is None
        assert s.scalar(select(StaffSession).where(StaffSession.staff_id == signed.id)) is None
        events = s.scalars(select(Event).where(Event.type == "staff.password_reset")).all()
        assert [(e.subject_id, e.data) for e in events] == [
            (signed.id, {"email": "clerk@acme.example", "by": "operator"})]
    for args, stdin, message in (
            (["--tenant", "acme", "--email", "nobody@acme.example"], "long enough pw\n",
             "no staff account 'nobody@acme.example' at 'acme'"),
            (["--tenant", "acme", "--email", "boss@globex.example"], "long enough pw\n",
             "no staff account 'boss@globex.example' at 'acme'"),
            (["--tenant", "acme", "--email", "clerk@acme.example"], "short\n",
             "10 to 1024 characters"),
            (["--tenant", "acme", "--email", "clerk@acme.example"], "", "no password")):
        code, out, err = cli(["staff", "set-password", *args], stdin)
        lines = err.strip().splitlines()
        assert code == 1 and len(lines) == 1 and message in lines[0], (args, out, err)
    with transaction(sessions) as s:  # nothing changed by the refusals
        staff.authenticate_staff(s, "clerk@acme.example", "a brand new password")
        staff.authenticate_staff(s, "boss@globex.example", "the first password")

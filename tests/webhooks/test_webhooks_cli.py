"""``haina webhooks``: replay from the terminal; bad input is one line on stderr and exit 1."""

from __future__ import annotations

import subprocess

import pytest
from support import run_cli

from haina.core.db import transaction
from haina.core.events import record_event
from haina.core.ids import new_id
from haina.webhooks import service
from haina.webhooks.delivery import Dispatcher
from haina.webhooks.schemas import EndpointIn


def haina_here(url: str, args: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    return run_cli(url, ["webhooks", *args], monkeypatch, capsys)


@pytest.fixture
def sqlite_only(db_url):
    if not db_url.startswith("sqlite"):
        pytest.skip("the command line is the same on both databases; SQLite is enough")
    return db_url


def test_replay_and_failed_from_the_command_line(sqlite_only, sessions, tenant, monkeypatch,
                                                 capsys):
    url = sqlite_only

    def haina(url: str, *args: str) -> subprocess.CompletedProcess:
        code, out, err = haina_here(url, list(args), monkeypatch, capsys)
        return subprocess.CompletedProcess(args, code, out, err)

    with transaction(sessions) as s:
        ep = service.create_endpoint(s, tenant, EndpointIn(url="http://127.0.0.1:9/down",
                                                           event_types=["order.*"]))
        eid = record_event(s, tenant.id, "order.created", new_id("order"),
                           {"status": "pending_payment"})
    [job] = Dispatcher(sessions).fan_out(100)
    assert job.event_id == eid
    r = haina(url, "replay", "--tenant", "acme", "--delivery", job.delivery_id)
    assert r.returncode == 0, r.stderr
    assert job.delivery_id in r.stdout and eid in r.stdout
    r = haina(url, "replay", "--tenant", "acme", "--endpoint", ep.id,
              "--since", "2000-01-01T00:00:00Z")
    assert r.returncode == 0 and "queued 1 messages" in r.stdout, r.stderr
    r = haina(url, "failed", "--tenant", "acme")
    assert r.returncode == 0 and "failed webhook messages of acme" in r.stdout


@pytest.mark.parametrize("args, message", [
    (["replay", "--tenant", "acme"], "either --delivery"),
    (["replay", "--tenant", "acme", "--endpoint", "we_x"], "needs --since"),
    (["replay", "--tenant", "acme", "--endpoint", "we_x", "--since", "yesterday"],
     "not an ISO 8601 time"),
    (["replay", "--tenant", "acme", "--endpoint", "we_x", "--since", "2026-01-01T00:00:00"],
     "no time zone"),
    (["replay", "--tenant", "acme", "--delivery", "msg_nope"], "no webhook delivery 'msg_nope'"),
    (["replay", "--tenant", "nobody", "--delivery", "msg_nope"], "no tenant 'nobody'"),
    (["failed", "--tenant", "acme", "--limit", "0"], "limit"),
])
def test_bad_input_is_one_line_and_exit_1(sqlite_only, tenant, args, message, monkeypatch,
                                          capsys):
    code, out, err = haina_here(sqlite_only, args, monkeypatch, capsys)
    assert code == 1, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err

"""``haina privacy``: export and erase from the terminal with a progress line; bad input is
one line on stderr and exit status 1."""

from __future__ import annotations

import zipfile

from support import make_tenant, run_cli

from haina.core.db import make_engine, make_sessionmaker, transaction
from haina.members import service as members
from haina.members.schemas import MemberCreate


def haina_here(url: str, args: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    return run_cli(url, ["privacy", *args], monkeypatch, capsys)


def test_export_and_erase_from_the_terminal(db_url, monkeypatch, capsys, tmp_path):
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    tenant, _ = make_tenant(sessions, "acme")
    with transaction(sessions) as s:
        member = members.create_member(s, tenant, MemberCreate(name="Cao Yi",
                                                               email="cao.yi@example.cn")).id
    engine.dispose()
    target = tmp_path / "cao.zip"
    code, out, err = haina_here(db_url, ["export", "--tenant", "acme", "--member", member,
                                         "--out", str(target)], monkeypatch, capsys)
    assert code == 0, err
    assert "rows of" in out and str(target) in out
    assert "Cao Yi" in zipfile.ZipFile(target).read("members.csv").decode("utf-8-sig")
    code, out, err = haina_here(db_url, ["erase", "--tenant", "acme", "--member", member],
                                monkeypatch, capsys)
    assert code == 1 and err.strip() == "error: erasure cannot be undone: add --yes to confirm"
    code, out, err = haina_here(db_url, ["erase", "--tenant", "acme", "--member", member,
                                         "--yes"], monkeypatch, capsys)
    assert code == 0 and f"erased {member}" in out, err
    code, out, err = haina_here(db_url, ["erase", "--tenant", "acme", "--member", member,
                                         "--yes"], monkeypatch, capsys)
    assert code == 0 and "already erased" in out
    code, out, err = haina_here(db_url, ["retention", "--tenant", "acme", "--kind",
                                         "abandoned_carts", "--days", "30"], monkeypatch, capsys)
    assert code == 0 and "abandoned_carts" in out and "30" in out


def test_bad_input_is_one_line_and_exit_1(db_url, monkeypatch, capsys):
    engine = make_engine(db_url)
    make_tenant(make_sessionmaker(engine), "acme")
    engine.dispose()
    for args, says in (
            (["export", "--tenant", "nope", "--member", "mem_x"], "nope"),
            (["export", "--tenant", "acme", "--member", "mem_00000000000000000000000000"],
             "mem_00000000000000000000000000"),
            (["export", "--tenant", "acme"], "--member"),
            (["retention", "--tenant", "acme", "--kind", "audit_events", "--days", "7"], "180"),
            (["retention", "--tenant", "acme", "--kind", "carts", "--days", "7"], "unknown kind"),
    ):
        code, out, err = haina_here(db_url, args, monkeypatch, capsys)
        assert code == 1, (args, out, err)
        assert err.count("\n") == 1 and err.startswith("error: ") and says in err, (args, err)

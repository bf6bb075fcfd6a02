"""``haina campaigns`` create, list, show and results, in process; bad input is one line and
exit 1."""

from __future__ import annotations

import datetime as dt
import json

from support import make_tenant, run_cli

from haina.core.db import transaction
from haina.members import service as members
from haina.members.schemas import MemberCreate


def test_create_list_show_and_results_from_the_terminal(db_url, sessions, monkeypatch, capsys,
                                                        tmp_path):
    tenant, _ = make_tenant(sessions)
    with transaction(sessions) as s:
        ids = [members.create_member(s, tenant, MemberCreate.model_validate(
            {"name": f"M{i}", "consents": {"email_marketing": True, "channel": "web"}})).id
            for i in range(4)]
    ends = (dt.datetime.now(dt.UTC) + dt.timedelta(days=10)).isoformat()
    code, out, err = run_cli(db_url, [
        "campaigns", "create", "--tenant", "acme", "--name", "Spring", "--members",
        ",".join(ids), "--off", "15.00", "--holdout", "25", "--channel", "email",
        "--ends-at", ends, "--seed", "cli"], monkeypatch, capsys)
    assert code == 0, err
    assert out.startswith("created cmp_") and "4 consenting" in out
    campaign_id = out.split()[1]
    code, out, _ = run_cli(db_url, ["campaigns", "list", "--tenant", "acme"], monkeypatch, capsys)
    assert code == 0 and campaign_id in out and "running" in out, out
    code, out, _ = run_cli(db_url, ["campaigns", "show", campaign_id, "--tenant", "acme"],
                           monkeypatch, capsys)
    shown = json.loads(out)
    assert code == 0 and shown["seed"] == "cli" and shown["basis"] == "consent:email_marketing"
    chart = tmp_path / "lift.svg"
    code, out, _ = run_cli(db_url, ["campaigns", "results", campaign_id, "--tenant", "acme",
                                    "--plot", str(chart)], monkeypatch, capsys)
    assert code == 0 and "incremental revenue" in out and chart.read_bytes().startswith(b"<?xml")
    code, out, _ = run_cli(db_url, ["campaigns", "results", campaign_id, "--tenant", "acme",
                                    "--json"], monkeypatch, capsys)
    assert json.loads(out)["treated"]["members"] == shown["treated"]
    # a launch larger than a batch: queued, or enrolled here with --wait (batches of 3)
    monkeypatch.setenv("HAINA_CAMPAIGN_BATCH_SIZE", "3")
    code, out, err = run_cli(db_url, [
        "campaigns", "create", "--tenant", "acme", "--name", "Queued", "--members",
        ",".join(ids), "--off", "5.00", "--channel", "email", "--ends-at", ends],
        monkeypatch, capsys)
    assert code == 0 and "0 treated, 0 held out of 4 consenting" in out, (out, err)
    assert "launch cjob_" in out and "queued" in out and "campaigns enrol" in out
    queued = out.split()[1]
    code, out, err = run_cli(db_url, ["campaigns", "enrol", queued, "--tenant", "acme"],
                             monkeypatch, capsys)
    assert code == 0 and "succeeded, 4 of 4 members (100 %)" in out, (out, err)
    code, out, err = run_cli(db_url, [
        "campaigns", "create", "--tenant", "acme", "--name", "Waited", "--members",
        ",".join(ids), "--off", "5.00", "--channel", "email", "--ends-at", ends, "--wait",
        "--seed", "cli", "--holdout", "25"], monkeypatch, capsys)
    # the same seed and members as the first: the same draw
    assert code == 0 and f"{shown['treated']} treated" in out and "4 consenting" in out, err
    waited = out.split()[1]
    code, out, err = run_cli(db_url, ["campaigns", "enrol", waited, "--tenant", "acme",
                                      "--reevaluate"], monkeypatch, capsys)
    assert code == 0 and out.startswith("reevaluate cjob_") and "0 treated and 0 held" in out
    monkeypatch.delenv("HAINA_CAMPAIGN_BATCH_SIZE")
    for argv, words in (
            (["create", "--tenant", "acme", "--name", "x", "--members", ids[0], "--off", "1",
              "--ends-at", "2030-01-01T00:00:00"], "no time zone"),
            (["create", "--tenant", "acme", "--name", "x", "--members", ids[0], "--off", "1",
              "--percent", "5", "--ends-at", ends], "either --off"),
            (["create", "--tenant", "acme", "--name", "x", "--members", ids[0], "--off", "1",
              "--holdout", "95", "--ends-at", ends], "holdout_percent"),
            (["show", "cmp_nope", "--tenant", "acme"], "cmp_nope"),
            (["enrol", "cmp_nope", "--tenant", "acme", "--reevaluate"], "cmp_nope"),
            (["results", campaign_id, "--tenant", "acme", "--plot", "x.gif"], ".svg or .png"),
            (["list", "--tenant", "nope"], "nope")):
        code, out, err = run_cli(db_url, ["campaigns", *argv], monkeypatch, capsys)
        assert code == 1 and words in err and len(err.strip().splitlines()) == 1, (argv, err)

"""The command group (iterit.cli): a command that succeeds leaves the torch.distributed process
group before the process exits; one that fails leaves it alone (other ranks may still wait in
a collective)."""

from __future__ import annotations

from tests.helpers.cli import EXAMPLE, fail, run


def test_success_leaves_the_process_group_failure_does_not(monkeypatch, tmp_path):
    calls: list[str] = []
    monkeypatch.setattr("iterit.utils.distributed.shutdown", lambda: calls.append("shutdown"))
    out = tmp_path / "picked.jsonl"
    run("select", EXAMPLE, "--budget", "3", "--strategy", "random", "--out", out)
    assert out.exists() and calls == ["shutdown"]
    fail("select", tmp_path / "absent.jsonl", "--budget", "3", "--out", tmp_path / "b.jsonl")
    assert calls == ["shutdown"]

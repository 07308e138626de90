"""``iterit select``: what it writes, its strategies and complexity sources, and bad input
(one line, exit status != 0, nothing written)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

import iterit
from iterit.cli import main
from iterit.data import load
from tests.helpers.cli import CHAT, EXAMPLE, fail, fake_scores, run, sidecar


def test_select_with_scores_matches_the_algorithm(tmp_path):
    data = load(EXAMPLE)
    n = len(data)
    scores, ifd = fake_scores(tmp_path, n)
    out = tmp_path / "sel.jsonl"
    run("select", EXAMPLE, "--scores", scores, "--budget", "8", "--out", out)
    # docs/design.md, "Pool and iterations": the pool is the 3*M valid samples with the
    # highest IFD, then the greedy selection.
    valid = np.flatnonzero(~data.empty & (ifd < 1))
    pool = valid[np.argsort(-ifd[valid], kind="stable")[:24]]
    ref = iterit.select([data[int(i)].response for i in pool], ifd[pool], 8, decay=0.1)
    picks = pool[ref.indices]
    written = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert written == data.records(picks)  # original records, in pick order
    rows, meta = sidecar(out)
    assert [r["index"] for r in rows[:8]] == picks.tolist()
    assert [r["rank"] for r in rows[:8]] == list(range(8))
    assert all(r["rank"] is None for r in rows[8:]) and len(rows) == n
    np.testing.assert_allclose([r["score"] for r in rows[:8]], ref.scores, rtol=1e-9)
    status = {r["index"]: r["status"] for r in rows}
    assert status[int(np.flatnonzero(data.empty)[0])] == "empty"
    assert sum(s == "pool" for s in status.values()) == 16
    assert meta["n_empty"] == 1 and meta["budget"] == 8 and meta["pool_size"] == 24
    assert meta["n_ifd_ge_1"] == int((ifd[~data.empty] >= 1).sum())


def test_select_is_deterministic_and_keeps_the_format(tmp_path):
    scores, _ = fake_scores(tmp_path, len(load(EXAMPLE)))
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    run("select", EXAMPLE, "--scores", scores, "--budget", "0.1", "--out", a)
    run("select", EXAMPLE, "--scores", scores, "--budget", "0.1", "--out", b)
    assert a.read_bytes() == b.read_bytes()
    recs = json.loads(a.read_text(encoding="utf-8"))  # .json: a JSON array even from JSONL
    assert isinstance(recs, list) and len(recs) == 10
    pq = pytest.importorskip("pyarrow.parquet")
    run("select", EXAMPLE, "--scores", scores, "--budget", "0.1", "--out", tmp_path / "c.parquet")
    assert pq.read_table(tmp_path / "c.parquet").to_pylist() == recs


def test_select_sharegpt_writes_conversations_back(tmp_path):
    out = tmp_path / "chat.json"
    run("select", CHAT, "--complexity", "length", "--budget", "3", "--out", out)
    recs = json.loads(out.read_text(encoding="utf-8"))
    assert len(recs) == 3 and all("conversations" in r for r in recs)


def test_strategies(tmp_path):
    data = load(EXAMPLE)
    scores, ifd = fake_scores(tmp_path, len(data))
    words = np.array([len(s.response.split()) for s in data.samples])

    def picks(*args: str) -> list[int]:
        out = tmp_path / f"o{len(list(tmp_path.iterdir()))}.jsonl"
        run("select", EXAMPLE, "--budget", "6", "--out", out, *args)
        rows, _ = sidecar(out)
        return [r["index"] for r in rows if r["rank"] is not None]

    longest = picks("--strategy", "longest")
    assert words[longest].tolist() == sorted(words.tolist(), reverse=True)[:6]
    r0 = picks("--strategy", "random", "--seed", "0")
    assert r0 == picks("--strategy", "random", "--seed", "0")
    assert r0 != picks("--strategy", "random", "--seed", "1")
    top = picks("--strategy", "ifd", "--scores", str(scores))
    valid = np.flatnonzero(~data.empty & (ifd < 1))
    assert top == valid[np.argsort(-ifd[valid], kind="stable")[:6]].tolist()
    assert picks("--diversity", "none", "--scores", str(scores)) == top
    both = picks("--diversity", "both", "--scores", str(scores))
    assert len(both) == 6


def test_complexity_sources(tmp_path):
    src = tmp_path / "d.jsonl"
    recs = [
        {"instruction": f"q{i}", "output": f"answer number {i} " * (i % 5 + 1), "quality": i / 10}
        for i in range(1, 21)
    ]
    src.write_text("".join(json.dumps(r) + "\n" for r in recs))
    run(
        "select",
        src,
        "--complexity",
        "column:quality",
        "--diversity",
        "none",
        "--budget",
        "3",
        "--out",
        tmp_path / "c.jsonl",
    )
    got = [json.loads(x)["quality"] for x in (tmp_path / "c.jsonl").read_text().splitlines()]
    assert got == [2.0, 1.9, 1.8]  # no IFD < 1 cut for a column
    run("select", src, "--complexity", "none", "--budget", "3", "--out", tmp_path / "n.jsonl")
    run("select", src, "--complexity", "length", "--budget", "3", "--out", tmp_path / "l.jsonl")
    _, meta = sidecar(tmp_path / "l.jsonl")
    assert meta["complexity"] == "length"
    recs[4]["quality"] = "high"
    src.write_text("".join(json.dumps(r) + "\n" for r in recs))
    msg = fail(
        "select",
        src,
        "--complexity",
        "column:quality",
        "--budget",
        "3",
        "--out",
        tmp_path / "x.jsonl",
    )
    assert "record 4" in msg and "'quality'" in msg


def test_shortfall_is_a_warning_not_an_error(tmp_path):
    n = len(load(EXAMPLE))
    scores = tmp_path / "s.jsonl"
    ifd = [0.5 if i < 3 else 1.5 for i in range(n)]
    scores.write_text("".join(json.dumps({"index": i, "ifd": v}) + "\n" for i, v in enumerate(ifd)))
    res = run(
        "select", EXAMPLE, "--scores", scores, "--budget", "10", "--out", tmp_path / "o.jsonl"
    )
    assert "shortfall 7" in res.output
    _, meta = sidecar(tmp_path / "o.jsonl")
    assert meta["shortfall"] == 7 and meta["n_selected"] == 3


def test_malformed_jsonl(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"instruction": "a", "output": "b"}\n{"instruction": \n')
    msg = fail("select", p, "--complexity", "none", "--budget", "1", "--out", tmp_path / "o.jsonl")
    assert "bad.jsonl" in msg and "line 2" in msg and "invalid JSON" in msg
    assert not (tmp_path / "o.jsonl").exists()


def test_missing_and_non_string_fields(tmp_path):
    p = tmp_path / "m.json"
    p.write_text(json.dumps([{"instruction": "a", "output": "b"}, {"instruction": "c"}]))
    msg = fail("select", p, "--complexity", "none", "--budget", "1", "--out", tmp_path / "o.json")
    assert "m.json: record 1: missing field 'output'" in msg
    p.write_text(json.dumps([{"instruction": "a", "output": ["b"]}]))
    msg = fail("select", p, "--complexity", "none", "--budget", "1", "--out", tmp_path / "o.json")
    assert "record 0: field 'output' must be a string, got array" in msg


def test_field_override_from_the_command_line(tmp_path):
    p = tmp_path / "qa.jsonl"
    p.write_text(
        "".join(
            json.dumps({"q": f"question {i}", "a": f"answer {i} " * i}) + "\n" for i in range(1, 6)
        )
    )
    fail("select", p, "--complexity", "none", "--budget", "2", "--out", tmp_path / "x.jsonl")
    run(
        "select",
        p,
        "--field",
        "instruction=q",
        "--field",
        "output=a",
        "--complexity",
        "none",
        "--budget",
        "2",
        "--out",
        tmp_path / "o.jsonl",
    )
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 2
    msg = fail("select", p, "--field", "answer", "--budget", "2", "--out", tmp_path / "y.jsonl")
    assert "KEY=NAME" in msg


def test_unknown_format_and_empty_file(tmp_path):
    fail("select", EXAMPLE, "--format", "csv", "--budget", "1", "--out", tmp_path / "o", code=2)
    p = tmp_path / "odd.jsonl"
    p.write_text('{"text": "hello"}\n')
    assert "cannot detect the data format" in fail(
        "select", p, "--complexity", "none", "--budget", "1", "--out", tmp_path / "o.jsonl"
    )
    e = tmp_path / "empty.jsonl"
    e.write_text("")
    assert "empty.jsonl: the file is empty" in fail(
        "select", e, "--complexity", "none", "--budget", "1", "--out", tmp_path / "o.jsonl"
    )


def test_budget_larger_than_the_data_and_bad_budgets(tmp_path):
    msg = fail(
        "select",
        EXAMPLE,
        "--complexity",
        "none",
        "--budget",
        "500",
        "--out",
        tmp_path / "o.jsonl",
        code=2,
    )
    assert "larger than the data (97 records)" in msg
    for bad in ("0", "-3", "1.5", "abc", "150%"):
        fail("select", EXAMPLE, "--budget", bad, "--out", tmp_path / "o.jsonl", code=2)
    assert not (tmp_path / "o.jsonl").exists()


def test_existing_output_refused_unless_overwrite(tmp_path):
    out = tmp_path / "o.jsonl"
    out.write_text("precious\n")
    msg = fail("select", EXAMPLE, "--complexity", "none", "--budget", "3", "--out", out)
    assert "already exists" in msg and "--overwrite" in msg
    assert out.read_text() == "precious\n"
    assert not (tmp_path / "o.jsonl.meta.json").exists()
    run("select", EXAMPLE, "--complexity", "none", "--budget", "3", "--out", out, "--overwrite")
    assert len(out.read_text().splitlines()) == 3


def test_missing_output_folder_is_created(tmp_path):
    run(
        "select",
        EXAMPLE,
        "--complexity",
        "none",
        "--budget",
        "3",
        "--out",
        tmp_path / "no" / "such" / "o.jsonl",
    )
    assert len((tmp_path / "no" / "such" / "o.jsonl").read_text().splitlines()) == 3


def test_interrupted_run_leaves_no_partial_output(tmp_path, monkeypatch):
    from iterit.data import LoadedData

    original = LoadedData.records

    class Interrupting(list):
        def __iter__(self):
            for k, item in enumerate(list.__iter__(self)):
                if k == 2:
                    raise KeyboardInterrupt  # Ctrl-C in the middle of writing the output
                yield item

    def records(self, indices=None):
        got = original(self, indices)
        return Interrupting(got) if indices is not None else got

    monkeypatch.setattr(LoadedData, "records", records)
    # The same interruption where the Arrow column path (iterit.data.columns) parses its picks.
    from iterit.data import columns

    picked_lines = columns._picked_lines
    monkeypatch.setattr(columns, "_picked_lines", lambda *a: Interrupting(picked_lines(*a)))
    out = tmp_path / "o.jsonl"
    result = CliRunner().invoke(
        main, ["select", str(EXAMPLE), "--complexity", "none", "--budget", "5", "--out", str(out)]
    )
    assert result.exit_code != 0
    assert sorted(os.listdir(tmp_path)) == []  # no output, no sidecars, no temporary files


def test_scores_for_other_data_are_refused(tmp_path):
    data = load(EXAMPLE)
    from iterit.artifacts.score_files import sample_keys, write_table

    keys = sample_keys(data.samples)
    keys[4] = "0" * 16
    scores = tmp_path / "s.parquet"
    pytest.importorskip("pyarrow")
    write_table(
        scores, {"index": np.arange(len(data)), "ifd": np.full(len(data), 0.5), "key": keys}
    )
    msg = fail(
        "select", EXAMPLE, "--scores", scores, "--budget", "3", "--out", tmp_path / "o.jsonl"
    )
    assert "record 4" in msg and "different text" in msg
    short = tmp_path / "short.jsonl"
    short.write_text(json.dumps({"ifd": 0.5}) + "\n")
    assert "1 rows but the data has 97" in fail(
        "select", EXAMPLE, "--scores", short, "--budget", "3", "--out", tmp_path / "o.jsonl"
    )


@pytest.mark.slow
def test_main_job_with_embedded_smollm2(tmp_path, smollm2_path):
    from iterit.cli.options import default_model

    assert default_model() == str(smollm2_path) or os.environ.get("ITERIT_MODEL")
    small = tmp_path / "small.jsonl"
    small.write_text("".join(EXAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)[:12]))
    env = {**os.environ, "ITERIT_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("ITERIT_MODEL", None)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "iterit.cli",
            "select",
            str(small),
            "--budget",
            "3",
            "--out",
            str(tmp_path / "sel.jsonl"),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "SmolLM2-135M-Instruct" in proc.stderr
    rows, meta = sidecar(tmp_path / "sel.jsonl")
    assert meta["n_selected"] == 3 and meta["model"] == str(smollm2_path)
    ifd = [r["ifd"] for r in rows if r["ifd"] is not None]
    assert len(ifd) == 12 and all(0 < v < 5 for v in ifd)
    print(f"main job on 12 samples with SmolLM2: {time.perf_counter() - t0:.1f} s")


def test_the_summary_names_every_file_written(tmp_path):
    out = tmp_path / "sel.jsonl"
    text = run("select", EXAMPLE, "--complexity", "length", "--budget", "10", "--out", out).output
    line = next(x for x in text.splitlines() if x.startswith("written"))
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == [
        "sel.jsonl",
        "sel.jsonl.meta.json",
        "sel.jsonl.run.json",
        "sel.jsonl.scores.jsonl",
    ]
    assert all(name in line for name in written)

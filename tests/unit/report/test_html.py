"""iterit.report.html: a self-contained page, written atomically with its PNGs and summary."""

from __future__ import annotations

import base64
import json
import re

import pytest

from iterit.errors import OutputExistsError
from iterit.report import build_report, render_html, write_report
from iterit.report.model import Report
from tests.helpers.report import PNG, run_dir

pytest.importorskip("matplotlib")


def test_write_report_is_self_contained(tmp_path):
    rep = build_report(run_dir(tmp_path))
    html_path = write_report(rep, tmp_path / "rep")
    assert html_path == tmp_path / "rep" / "report.html"
    page = html_path.read_text(encoding="utf-8")
    for name in ("ifd.png", "lengths.png", "overlap.png", "ngrams.png"):
        assert (tmp_path / "rep" / name).read_bytes().startswith(PNG)
    # self-contained: every image is inline, nothing is fetched
    srcs = re.findall(r'src="([^"]+)"', page)
    assert len(srcs) == 4 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert base64.b64decode(srcs[0].split(",", 1)[1]).startswith(PNG)
    assert "Jaccard" in page and "epoch 2" in page
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert summary["overlap"]["labels"] == ["epoch 0", "epoch 1", "epoch 2"]
    with pytest.raises(OutputExistsError):
        write_report(rep, tmp_path / "rep")
    write_report(rep, tmp_path / "rep", overwrite=True)


def test_render_html_escapes_text():
    rep = Report(title="<run>", source="a&b", summary=[("x", "<1>")], notes=["n <b>"])
    page = render_html(rep, {})
    assert "<title>&lt;run&gt;</title>" in page and "a&amp;b" in page
    assert "&lt;1&gt;" in page and "Note: n &lt;b&gt;." in page and "<img" not in page

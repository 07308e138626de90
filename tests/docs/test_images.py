"""The pictures the guides show exist, are PNGs, stay small, and each one in docs/images/ is
shown somewhere (docs/make_images.py draws them from real runs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "docs" / "images"
MAX_BYTES = 200_000
_IMAGE = re.compile(r"!\[[^\]]*\]\((images/[^)\s]+)\)")

if not IMAGES.is_dir():  # the suite copied out of the source tree (.ci/wheel) has no docs/
    pytest.skip("docs/images is not beside the tests", allow_module_level=True)


def shown() -> set[str]:
    """The image paths the pages of docs/ name, relative to docs/."""
    return {
        m.group(1)
        for page in (ROOT / "docs").glob("*.md")
        for m in _IMAGE.finditer(page.read_text(encoding="utf-8"))
    }


def test_every_picture_shown_exists_and_is_small() -> None:
    names = shown()
    assert names, "no picture found in docs/*.md"
    for name in sorted(names):
        path = ROOT / "docs" / name
        assert path.is_file(), f"{name} is shown but missing"
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG"), f"{name} is not a PNG"
        assert len(data) < MAX_BYTES, f"{name}: {len(data)} bytes"


def test_every_picture_is_shown() -> None:
    stored = {f"images/{p.name}" for p in IMAGES.iterdir()}
    assert stored <= shown(), f"not shown on any page: {sorted(stored - shown())}"

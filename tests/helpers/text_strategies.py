"""Hypothesis strategies shared by the selector and text tests."""

from __future__ import annotations

from hypothesis import strategies as st

TRICKY = list("aAb_1 \t\n.,-") + [
    "Σ",
    "σ",
    "ς",
    "İ",
    "ı",
    "\u0301",
    "\u0345",
    "²",
    "½",
    "٣",
    "ǅ",
    "ß",
    "ẞ",
    "Ⅻ",
    "〇",
    "\u200d",
    "\u00a0",
    "ㄱ",
    "字",
    "\U0001f600",
    "\U00010400",
    "\u1e9e",
    "\u0130",
    "ﬁ",
]
tricky_text = st.text(alphabet=st.sampled_from(TRICKY), max_size=40)
any_text = st.one_of(st.text(max_size=40), tricky_text)

"""iterit.cli.params: the budget and finite-float option types."""

from __future__ import annotations

import pytest

click = pytest.importorskip("click")

from iterit.cli.params import BUDGET, FiniteFloatRange  # noqa: E402


@pytest.mark.parametrize(
    ("text", "expected"), [("0.05", 0.05), ("5%", 0.05), ("1000", 1000), (0.25, 0.25), (7, 7)]
)
def test_budget_reads_counts_fractions_and_shares(text, expected):
    got = BUDGET.convert(text, None, None)
    assert got == pytest.approx(expected) and type(got) is type(expected)


@pytest.mark.parametrize("text", ["0", "1.5", "nan", "-3", "many", "100%"])
def test_budget_refuses_the_rest(text):
    with pytest.raises(click.BadParameter):
        BUDGET.convert(text, None, None)


def test_finite_float_refuses_inf_and_nan_inside_or_without_bounds():
    bounded = FiniteFloatRange(min=0.0, max=1.0)
    assert bounded.convert("0.5", None, None) == 0.5
    for text in ("nan", "inf"):
        with pytest.raises(click.BadParameter, match="not a finite number"):
            FiniteFloatRange().convert(text, None, None)
    with pytest.raises(click.BadParameter):
        bounded.convert("2", None, None)

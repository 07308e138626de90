"""Click parameter types of the ``iterit`` options: a budget (a count, a fraction or a share)
and a finite float (:mod:`iterit.cli.options` uses them)."""

from __future__ import annotations

import math
from typing import Any

import click

__all__ = ["BUDGET", "FRACTION", "Budget", "FiniteFloatRange", "choice", "config_option"]


class Budget(click.ParamType):
    """``0.05`` or ``5%`` (a fraction of the records) or ``1000`` (a count)."""

    name = "BUDGET"

    def convert(self, value: Any, param: Any, ctx: Any) -> int | float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            raw: Any = value
        else:
            text = str(value).strip()
            try:
                if text.endswith("%"):
                    raw = float(text[:-1]) / 100.0
                elif any(ch in text for ch in ".eE") or text.lower() in ("nan", "inf"):
                    raw = float(text)
                else:
                    raw = int(text)
            except ValueError:
                self.fail(f"{value!r} is not a count (1000), a fraction (0.05) or a share (5%)")
        if isinstance(raw, float):
            if math.isnan(raw) or not 0.0 < raw < 1.0:
                self.fail(
                    f"a fractional budget must be in (0, 1), got {value!r}; give a count as an "
                    "integer (1000)"
                )
            return raw
        if raw < 1:
            self.fail(f"a budget must be at least 1, got {value!r}")
        return raw


BUDGET = Budget()


class FiniteFloatRange(click.FloatRange):
    """A float option, optionally bounded, that refuses ``inf`` and ``nan`` (a bound alone lets
    ``nan`` through: it compares false with everything).  Every float option uses it."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(number, param, ctx)


#: A share in [0, 1): decay, dropout, warm-up ratio, EMA weight.
FRACTION = FiniteFloatRange(min=0.0, max=1.0, max_open=True)


def choice(values: Any) -> click.Choice:
    """The choice type of every option with a list of names (case-insensitive)."""
    return click.Choice(list(values), case_sensitive=False)


def config_option(config: type, field: str, kind: Any = None, *, help: str, **kwargs: Any) -> Any:
    """``--field-name``: a click option for ``config``'s dataclass field ``field``, its default
    that field's (shown in ``--help`` unless ``show_default=False``), so that an option and the
    library default can never disagree; ``kind``: the click type; other keywords go to
    ``click.option`` (``default=`` overrides the field's)."""
    kwargs.setdefault("default", getattr(config, field))
    kwargs.setdefault("show_default", True)
    flag = "--" + field.replace("_", "-")
    return click.option(flag, field, type=kind, help=help, **kwargs)

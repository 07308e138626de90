"""Progress bars for the long steps (reading, TF-IDF, selection, writing, report building), in
one place.

A bar is shown only when asked for, when ``tqdm`` is installed and on the main process (one
rank prints under torchrun: :func:`iterit.utils.distributed.is_main_process`).  Otherwise the
iterable is returned as it is, so callers need no special case.  :func:`silenced_bars` quiets
the bars other libraries draw (transformers' GGUF de-quantising) when none are wanted.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from iterit.utils.distributed import is_main_process

__all__ = ["phase_progress", "progress", "progress_bar", "shows_progress", "silenced_bars"]

T = TypeVar("T")


def shows_progress(enabled: bool) -> bool:
    """Whether a bar asked for with ``enabled`` is drawn here: tqdm is installed and this is
    the main process."""
    if not enabled or not is_main_process():
        return False
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


def progress(
    items: Iterable[T],
    *,
    desc: str,
    enabled: bool = True,
    total: int | None = None,
    unit: str = "it",
) -> Iterable[T]:
    """``items`` with a progress bar on standard error when :func:`shows_progress`."""
    if not shows_progress(enabled):
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, total=total, unit=unit, dynamic_ncols=True, leave=False)


class _NoBar:
    def update(self, n: int = 1) -> None:
        """Nothing to draw."""


@contextlib.contextmanager
def progress_bar(
    *, desc: str, total: int | None, enabled: bool = True, unit: str = "it", scale: bool = False
) -> Iterator[Any]:
    """A bar to ``update(n)`` by hand (bytes read, rows written), or an object whose
    ``update`` does nothing when no bar is drawn."""
    if not shows_progress(enabled):
        yield _NoBar()
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=scale, dynamic_ncols=True, leave=False)
    try:
        yield bar
    finally:
        bar.close()


@contextlib.contextmanager
def phase_progress(*, enabled: bool = True) -> Iterator[Callable[[str, int, int], None] | None]:
    """A callback for the selector's ``progress`` (:data:`iterit.selection.selector.Progress`:
    ``(phase, done, total)``) that draws one bar per phase ("reading", "n-grams", "TF-IDF",
    "greedy"), or ``None`` when no bar is drawn.  The bars are closed on leaving."""
    if not shows_progress(enabled):
        yield None
        return
    from tqdm.auto import tqdm

    bars: dict[str, Any] = {}

    def update(phase: str, done: int, total: int) -> None:
        bar = bars.get(phase)
        if bar is None:
            for earlier in bars.values():
                earlier.close()  # the phases run one after the other
            bar = bars[phase] = tqdm(
                total=total or None, desc=phase, dynamic_ncols=True, leave=False
            )
        if total and bar.total != total:
            bar.total = total
        bar.update(max(0, done - bar.n))

    try:
        yield update
    finally:
        for bar in bars.values():
            bar.close()


@contextlib.contextmanager
def silenced_bars(enabled: bool = True) -> Iterator[None]:
    """While active (when ``enabled``), tqdm bars that other libraries create are not drawn.

    ``TQDM_DISABLE`` is read by tqdm once, when it is first imported, so setting it later (torch
    and transformers import tqdm early) does nothing; the default of ``disable`` is changed
    instead, for every tqdm class, and restored on leaving.  A caller passing ``disable``
    itself keeps its choice."""
    try:
        import tqdm.std
    except ImportError:
        yield
        return
    if not enabled:
        yield
        return
    cls = tqdm.std.tqdm
    before = cls.__dict__["__init__"]
    cls.__init__ = functools.partialmethod(before, disable=True)  # type: ignore[method-assign]
    try:
        yield
    finally:
        cls.__init__ = before  # type: ignore[method-assign]

"""Progress bars for the long steps (reading, writing, report building), in one place.

A bar is shown only when asked for, when ``tqdm`` is installed and on the main process (one
rank prints under torchrun: :func:`iterit.utils.distributed.is_main_process`).  Otherwise the
iterable is returned as it is, so callers need no special case.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from iterit.utils.distributed import is_main_process

__all__ = ["progress", "progress_bar", "shows_progress"]

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

"""The compiled core never reads a caller's numpy array while Python code may write it.

The core runs with the GIL released; a Python thread that writes the array meanwhile must not
change the result. The writer below is started so that it runs exactly while the core is
detached: with a switch interval far longer than the test, the calling thread keeps the GIL
until the core itself releases it.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

import numpy as np

from iterit import _iterit
from iterit.selection.text import analyzer, as_texts


def random_csr(n_rows: int, per_row: int, n_cols: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    indptr = np.arange(0, (n_rows + 1) * per_row, per_row, dtype=np.int64)
    cols = np.sort(rng.choice(n_cols, size=(n_rows, per_row)), axis=1)
    # Strictly increasing within a row: spread duplicates out.
    cols = cols + np.arange(per_row) * n_cols
    indices = cols.reshape(-1).astype(np.int32)
    data = rng.uniform(0.01, 1.0, size=n_rows * per_row)
    return indptr, indices, data, n_cols * per_row


def run_while_writing(call: Callable[[], tuple], write: Callable[[], None]) -> tuple:
    """``call()`` with ``write()`` run by another thread while the core has the GIL released;
    fails if the write did not happen during the call."""
    go = threading.Event()
    wrote = threading.Event()

    def writer() -> None:
        go.wait()
        write()
        wrote.set()

    thread = threading.Thread(target=writer)
    thread.start()
    old = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    try:
        go.set()
        result = call()
        # The writer could only take the GIL once the core released it, and the core's return
        # had to wait for the writer to give it back: the write happened during the call.
        written_during_call = wrote.is_set()
    finally:
        sys.setswitchinterval(old)
        thread.join()
    assert written_during_call
    return result


def picks(result: tuple) -> tuple[list[int], list[float]]:
    return result[0].tolist(), result[1].tolist()


def test_select_csr_ignores_writes_to_its_inputs_during_the_call() -> None:
    indptr, indices, data, n_cols = random_csr(100_000, 20, 5_000)
    complexity = np.random.default_rng(1).uniform(0.1, 0.9, size=100_000)

    def call(d: np.ndarray, c: np.ndarray) -> tuple:
        return _iterit.select_csr(indptr, indices, d, n_cols, c, 5_000, 0.1, 1.0, 2)

    want = picks(call(data.copy(), complexity.copy()))
    # The writes below would change the picks if the core read them.
    assert picks(call(data[::-1].copy(), complexity[::-1].copy())) != want

    def scramble() -> None:
        data[:] = data[::-1].copy()
        complexity[:] = complexity[::-1].copy()

    got = picks(run_while_writing(lambda: call(data, complexity), scramble))
    assert got == want


def test_select_texts_ignores_writes_to_complexity_during_the_call() -> None:
    rng = np.random.default_rng(2)
    words = np.array([f"w{i}" for i in range(2_000)])
    texts = [" ".join(rng.choice(words, size=30)) for _ in range(20_000)]
    complexity = rng.uniform(0.1, 0.9, size=len(texts))

    read = as_texts(texts)

    def call(c: np.ndarray) -> tuple:
        args = (read, analyzer(), (1, 3), "sklearn", c, 2_000, 0.1, 1.0, 2)
        return _iterit.select_texts(*args)

    want = picks(call(complexity.copy()))
    assert picks(call(complexity[::-1].copy())) != want

    def scramble() -> None:
        complexity[:] = complexity[::-1].copy()

    got = picks(run_while_writing(lambda: call(complexity), scramble))
    assert got == want

"""Type stub of the compiled core (private: use iterit.select / iterit.tfidf)."""

import numpy as np
import numpy.typing as npt

__version__: str

class NgramNames:
    def __len__(self) -> int: ...
    def __getitem__(self, col: int) -> str: ...
    def to_list(self) -> list[str]: ...

def tfidf(
    texts: list[str],
    word_ranges: npt.NDArray[np.uint32],
    ngram_range: tuple[int, int],
    variant: str,
    keep_vocabulary: bool,
    n_threads: int | None = None,
) -> tuple[
    npt.NDArray[np.int64],
    npt.NDArray[np.int32],
    npt.NDArray[np.float64],
    npt.NDArray[np.uint32],
    int,
    NgramNames | None,
]: ...

_SelectionTuple = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], int, int, int]

def select_texts(
    texts: list[str],
    word_ranges: npt.NDArray[np.uint32],
    ngram_range: tuple[int, int],
    variant: str,
    complexity: npt.NDArray[np.float64] | None,
    budget: int,
    decay: float,
    max_complexity: float | None,
    n_threads: int | None = None,
) -> _SelectionTuple: ...
def select_csr(
    indptr: npt.NDArray[np.int32] | npt.NDArray[np.int64],
    indices: npt.NDArray[np.int32] | npt.NDArray[np.int64],
    data: npt.NDArray[np.float64],
    n_cols: int,
    complexity: npt.NDArray[np.float64] | None,
    budget: int,
    decay: float,
    max_complexity: float | None,
    n_threads: int | None = None,
) -> _SelectionTuple: ...

"""Type stub of the compiled core (private: use iterit.select / iterit.tfidf)."""

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

__version__: str

_Progress = Callable[[str, int, int], object]

class NgramNames:
    def __len__(self) -> int: ...
    def __getitem__(self, col: int) -> str: ...
    def to_list(self) -> list[str]: ...

class Texts:
    """Texts read from a list or tuple of str, or an Arrow string column, and held."""

    def __init__(self, texts: object, what: str = "texts") -> None: ...
    def __len__(self) -> int: ...

class Analyzer:
    """Python's str.lower and \\w as tables."""

    def __init__(
        self,
        word_ranges: npt.NDArray[np.uint32],
        lower_mappings: npt.NDArray[np.uint32],
        cased_ranges: npt.NDArray[np.uint32],
        case_ignorable_ranges: npt.NDArray[np.uint32],
    ) -> None: ...
    def lowercase(self, texts: Texts) -> list[str]: ...

def tfidf(
    texts: Texts,
    analyzer: Analyzer,
    ngram_range: tuple[int, int],
    variant: str,
    keep_vocabulary: bool,
    n_threads: int | None = None,
    progress: _Progress | None = None,
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
    texts: Texts,
    analyzer: Analyzer,
    ngram_range: tuple[int, int],
    variant: str,
    complexity: npt.NDArray[np.float64] | None,
    budget: int,
    decay: float,
    max_complexity: float | None,
    n_threads: int | None = None,
    progress: _Progress | None = None,
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

"""iterit.training.sampler: fixed length per epoch, seeded shuffle, shortfall repeat."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from iterit.training.sampler import IterITSampler


def test_sampler_fixed_length_seeded_shuffle_and_shortfall_repeat():
    s = IterITSampler(6, seed=3)
    with pytest.raises(RuntimeError, match="no selection"):
        list(s)
    s.set_selection([10, 11, 12, 13, 14, 15], epoch=0)
    a = list(s)
    assert len(s) == 6 and sorted(a) == [10, 11, 12, 13, 14, 15]
    assert list(s) == a  # same epoch, same order (resume skips the same batches)
    s.set_selection([10, 11, 12, 13, 14, 15], epoch=1)
    assert sorted(list(s)) == sorted(a) and list(s) != a  # reshuffled per epoch
    s.set_selection([1, 2, 3, 4], epoch=2)  # shortfall: repeated to keep M per epoch
    order = list(s)
    assert len(order) == 6 and set(order) == {1, 2, 3, 4}
    rows = IterITSampler(3, rows=np.array([2, -1, 0, 1]), seed=0)
    rows.set_selection([0, 2, 3], epoch=0)
    assert sorted(rows) == [0, 1, 2]
    with pytest.raises(ValueError, match="no row"):
        rows.set_selection([1], epoch=0)

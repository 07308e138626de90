"""The sampler the IterIT trainers train with: a fixed number M of samples per epoch whose
index list is replaced before each epoch (docs/design.md, "Pool and iterations").

Because its length never changes, the trainer's step count and its learning-rate schedule,
which spans all epochs, stay right.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from iterit.errors import ConfigError, InternalError, InvalidInputError
from iterit.utils.optional import requires_extra

with requires_extra("train"):
    import torch

__all__ = ["IterITSampler"]


class IterITSampler(torch.utils.data.Sampler[int]):
    """A sampler of fixed length ``num_samples`` (M) over the tokenised dataset whose index list
    is replaced before each epoch by :meth:`set_selection`.

    Each epoch yields the current selection in a shuffled order seeded by ``(seed, epoch)``
    (batches are sampled at random), the same on every rank, so that accelerate's batch sharding
    gives each rank its own part and ``skip_first_batches`` on resume skips exactly the batches
    already trained.  When fewer than M samples could be selected, the selection is repeated (in
    further shuffled rounds) to keep the epoch at M samples, and the shortfall is recorded in the
    selection log; nothing is padded silently.

    ``rows`` maps sample index to dataset row (identity by default).
    """

    def __init__(self, num_samples: int, *, rows: np.ndarray | None = None, seed: int = 0) -> None:
        if num_samples < 1:
            raise ConfigError(f"num_samples must be at least 1, got {num_samples}")
        self.num_samples = int(num_samples)
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        self.seed = int(seed)
        self.epoch = 0
        self.selection: np.ndarray | None = None  # sample indices, pick order

    def set_selection(self, indices: Sequence[int] | np.ndarray, epoch: int) -> None:
        idx = np.asarray(indices, dtype=np.int64)
        if idx.ndim != 1 or idx.shape[0] == 0:
            raise InvalidInputError("the selection is empty: no valid sample to train on")
        if self.rows is not None:
            if idx.min() < 0 or idx.max() >= self.rows.shape[0]:
                raise InvalidInputError("a selected sample index is out of range of the dataset")
            if (self.rows[idx] < 0).any():
                missing = idx[self.rows[idx] < 0][:5].tolist()
                raise InvalidInputError(
                    f"selected samples {missing} have no row in the training dataset (dropped by "
                    "the trainer's preparation?)"
                )
        self.selection = idx
        self.epoch = int(epoch)

    def set_epoch(self, epoch: int) -> None:
        # The callback already set the epoch with the selection; keep accelerate/Trainer calls
        # harmless (they pass the same number).
        self.epoch = int(epoch)

    def order(self) -> np.ndarray:
        """Dataset rows of this epoch, in the order they are yielded."""
        if self.selection is None:
            raise InternalError(
                "IterITSampler has no selection yet: the IterIT callback selects at epoch begin "
                "(was the trainer an IterITTrainer, or set up with iterit.training.attach?)"
            )
        rng = np.random.default_rng([self.seed, self.epoch])
        sel = self.selection
        rounds = -(-self.num_samples // sel.shape[0])
        order = np.concatenate([sel[rng.permutation(sel.shape[0])] for _ in range(rounds)])
        order = order[: self.num_samples]
        return order if self.rows is None else self.rows[order]

    def __iter__(self) -> Iterator[int]:
        return iter(self.order().tolist())

    def __len__(self) -> int:
        return self.num_samples

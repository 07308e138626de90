"""The training data: every sample tokenised once as the IFD scorer's conditional sequence
(prompt tokens masked out of the labels, so the loss covers the response only), and the
collators that batch it.

* :func:`encode_samples` / :class:`TokenizedSamples` for ``transformers.Trainer``;
  :func:`sft_dataset` (a ``datasets.Dataset`` with an ``iterit_index`` column) for
  ``trl.SFTTrainer``.
* :class:`ResponseOnlyCollator` pads a batch; :class:`IndexingCollator` carries each row's
  sample index through a collator (in-loop losses need to know whose loss each row is).
* :func:`sample_rows` maps sample index to dataset row, even when the trainer's preparation
  dropped or reordered rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from iterit.config import ScoringConfig
from iterit.data.sample import Sample, as_sample
from iterit.errors import ConfigError, InvalidInputError
from iterit.utils.optional import requires_extra

with requires_extra("train"):
    import torch

__all__ = [
    "INDEX_KEY",
    "IndexingCollator",
    "ResponseOnlyCollator",
    "TokenizedSamples",
    "encode_sample",
    "encode_samples",
    "has_index",
    "sample_rows",
    "sft_dataset",
]

#: The column / item key holding a training row's sample index.
INDEX_KEY = "iterit_index"
#: Why a training batch without sample indices cannot record in-loop losses.
MISSING_INDEX = (
    "in-loop re-scoring needs each training row's sample index ('iterit_index'): "
    "train on iterit.training.datasets.TokenizedSamples or sft_dataset"
)


def encode_samples(
    samples: Sequence[Sample | dict],
    tokenizer: Any,
    scoring: ScoringConfig | None = None,
    **settings: Any,
) -> list[dict[str, list[int]]]:
    """Training rows: ``input_ids`` = ``p + r[:k]`` and ``labels`` = ``[-100] * len(p) + r[:k]``;
    for a conversation read turn by turn (``turns="all"``, the chat template), the whole
    conversation with labels on every kept assistant turn's tokens and nothing else.

    This is the IFD scorer's own conditional sequence (built by the same code in
    :mod:`iterit.scoring`), so training and scoring agree on the prompt format, the start
    and end tokens and the truncation to ``max_length``; the loss covers the response tokens
    only.  A sample without a valid score (empty response, or a prompt that leaves no room
    within ``max_length``) gets a one-token row with no label: it is never selected.

    ``scoring``: the template, max length and turns (:class:`~iterit.config.ScoringConfig`);
    ``settings``: any of them by name instead or on top (``max_length=512``).
    """
    from iterit.scoring import encode_for_scoring, start_token

    cfg = ScoringConfig.of(scoring, **settings)
    items = [as_sample(s, i) for i, s in enumerate(samples)]
    enc = encode_for_scoring(tokenizer, items, cfg.template, cfg.max_length, turns=cfg.turns)
    start = start_token(tokenizer)
    rows = []
    for ids, segments in zip(enc.cond, enc.segments, strict=True):
        if not segments:
            rows.append({"input_ids": [start], "labels": [-100]})
            continue
        labels = [-100] * len(ids)
        for a, b in segments:
            labels[a:b] = ids[a:b]
        rows.append({"input_ids": list(ids), "labels": labels})
    return rows


def encode_sample(
    sample: Sample | dict, tokenizer: Any, scoring: ScoringConfig | None = None, **settings: Any
) -> dict[str, list[int]]:
    """:func:`encode_samples` of one sample."""
    return encode_samples([sample], tokenizer, scoring, **settings)[0]


class TokenizedSamples(torch.utils.data.Dataset):
    """Every sample tokenised once for ``transformers.Trainer`` (row i is sample i);
    ``scoring`` and ``settings`` as in :func:`encode_samples`."""

    def __init__(
        self,
        samples: Sequence[Sample | dict],
        tokenizer: Any,
        scoring: ScoringConfig | None = None,
        **settings: Any,
    ) -> None:
        self.rows = encode_samples(samples, tokenizer, scoring, **settings)
        #: Add ``iterit_index`` (the row's sample index) to every item; the IterIT trainers
        #: turn it on for in-loop losses, which need to know which sample each loss belongs to.
        self.with_index = False

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if self.with_index:
            return {**self.rows[i], INDEX_KEY: int(i)}
        return self.rows[i]


def sft_dataset(
    samples: Sequence[Sample | dict],
    tokenizer: Any,
    scoring: ScoringConfig | None = None,
    **settings: Any,
) -> Any:
    """A pre-tokenised ``datasets.Dataset`` for ``trl.SFTTrainer``: ``input_ids``, ``labels``
    (prompt masked) and ``iterit_index`` (the sample's position), which IterIT uses to find each
    sample's row even if the trainer's preparation drops or reorders rows; ``scoring`` and
    ``settings`` as in :func:`encode_samples`."""
    import datasets

    rows = encode_samples(samples, tokenizer, scoring, **settings)
    return datasets.Dataset.from_dict(
        {
            "input_ids": [r["input_ids"] for r in rows],
            "labels": [r["labels"] for r in rows],
            INDEX_KEY: list(range(len(rows))),
        }
    )


def has_index(train_dataset: Any) -> bool:
    """Whether the dataset's rows carry their sample index (a column, or TokenizedSamples)."""
    names = getattr(train_dataset, "column_names", None) or []
    return INDEX_KEY in names or isinstance(train_dataset, TokenizedSamples)


def sample_rows(train_dataset: Any, n: int) -> np.ndarray | None:
    """Dataset row of each of ``n`` samples (-1: no row), from the ``iterit_index`` column;
    None when the dataset has one row per sample in order (identity)."""
    names = getattr(train_dataset, "column_names", None) or []
    if INDEX_KEY in names:
        index = np.asarray(train_dataset[INDEX_KEY], dtype=np.int64)
        rows = np.full(n, -1, dtype=np.int64)
        if index.size and (index.min() < 0 or index.max() >= n):
            raise InvalidInputError(
                "the training dataset's iterit_index is out of range of the samples"
            )
        rows[index] = np.arange(index.shape[0])
        return rows
    if len(train_dataset) != n:
        raise InvalidInputError(
            f"the training dataset has {len(train_dataset)} rows for {n} samples: give it one row "
            "per sample in the same order (TokenizedSamples), or an 'iterit_index' column "
            "(sft_dataset)"
        )
    return None


class ResponseOnlyCollator:
    """Pads ``input_ids`` (with ``pad_token_id``) and ``labels`` (with -100) to the longest row
    of the batch and adds the ``attention_mask``; labels already carry -100 on prompt tokens."""

    def __init__(
        self,
        pad_token_id: int,
        *,
        pad_to_multiple_of: int | None = None,
        padding_side: str = "right",
    ) -> None:
        if pad_token_id is None:
            raise ConfigError(
                "pad_token_id is None: set tokenizer.pad_token (e.g. to the EOS token)"
            )
        if padding_side not in ("right", "left"):
            raise ConfigError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
        self.pad_token_id = int(pad_token_id)
        self.pad_to_multiple_of = pad_to_multiple_of
        self.padding_side = padding_side

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        n = len(features)
        input_ids = torch.full((n, width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((n, width), -100, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        for row, f in enumerate(features):
            ids = torch.as_tensor(f["input_ids"], dtype=torch.long)
            lab = torch.as_tensor(f.get("labels", f["input_ids"]), dtype=torch.long)
            start = 0 if self.padding_side == "right" else width - ids.shape[0]
            sl = slice(start, start + ids.shape[0])
            input_ids[row, sl] = ids
            labels[row, sl] = lab
            mask[row, sl] = 1
        return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


class IndexingCollator:
    """Wraps a data collator: takes ``iterit_index`` out of every feature, collates the rest
    with the wrapped collator, and adds the indices to the batch as an int64 tensor.

    ``required=False``: a batch whose features have no index at all (an evaluation set) is
    collated by the wrapped collator as it is, without indices."""

    def __init__(
        self, inner: Callable[[Sequence[dict[str, Any]]], Any], *, required: bool = True
    ) -> None:
        self.inner = inner
        self.required = required

    def __call__(self, features: Sequence[dict[str, Any]]) -> Any:
        if not self.required and not any(INDEX_KEY in f for f in features):
            return self.inner(features)
        index = []
        rest = []
        for f in features:
            if INDEX_KEY not in f:
                raise InvalidInputError(MISSING_INDEX)
            f = dict(f)
            index.append(int(f.pop(INDEX_KEY)))
            rest.append(f)
        batch = self.inner(rest)
        batch[INDEX_KEY] = torch.tensor(index, dtype=torch.long)
        return batch

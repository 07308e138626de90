"""iterit.training.datasets: the training rows are the scored sequences; collators."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from iterit.training.datasets import ResponseOnlyCollator, encode_samples
from tests.helpers.tiny_llama import tiny_model


def test_training_rows_are_the_scored_sequences(data):
    """The training sequence is IFD's conditional sequence: prompt masked, the k scored
    response tokens (and nothing else) carry labels, same template and truncation."""
    from iterit.scoring import IFDScorer

    samples, tok = data
    rows = encode_samples(samples[:12], tok, max_length=40)
    scores = IFDScorer(tiny_model(tok), tok, max_length=40, progress=False).score(samples[:12])
    for s, row, k in zip(samples[:12], rows, scores.n_tokens, strict=True):
        ids, labels = row["input_ids"], row["labels"]
        assert len(ids) == len(labels) <= 40
        assert ids[0] == tok.bos_token_id
        n_lab = sum(lab != -100 for lab in labels)
        assert n_lab == k  # exactly the scored response tokens
        if k:
            first = labels.index(next(lab for lab in labels if lab != -100))
            assert all(lab == -100 for lab in labels[:first])
            assert labels[first:] == ids[first:]
            resp = tok(s.response, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
            assert ids[first:] == resp[:k]


def test_collator_pads_right_with_masked_labels():
    coll = ResponseOnlyCollator(0, pad_to_multiple_of=4)
    batch = coll(
        [{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8], "labels": [8]}]
    )
    assert batch["input_ids"].tolist() == [[5, 6, 7, 0], [8, 0, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7, -100], [8, -100, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 0, 0, 0]]
    with pytest.raises(ValueError, match="pad_token"):
        ResponseOnlyCollator(None)

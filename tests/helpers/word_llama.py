"""The scorer's test models: a word-level tokenizer over a small corpus (optionally without a
BOS token, never with a pad token) and tiny random Llamas with sharp predictions, so errors in
positions or masks show up in the scores."""

from __future__ import annotations

import random

from iterit.data.sample import Sample

CORPUS = [
    "below is an instruction that describes a task paired with an input that provides further",
    "context write a response that appropriately completes the request",
    "instruction input response the quick brown fox jumps over the lazy dog",
    "write a short poem about the sea and the sky at night",
    "what is two plus two the answer is four because two and two make four",
    "list three colours red green blue name a fruit apple pear plum",
    "explain why the sky is blue light scatters in the air",
    "# ### : . , ? ! ( ) 1 2 3",
]
WORDS = sorted({w for line in CORPUS for w in line.split()})
#: max_length of the scorer tests, and the samples of make_samples() that have no score.
MAX_LEN = 64
INVALID = {5, 11, 17}


def make_tokenizer(*, bos: bool = True):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    specials = ["<unk>", "<s>", "</s>"]
    tk.train_from_iterator(CORPUS, trainers.WordLevelTrainer(special_tokens=specials))
    kwargs = {"eos_token": "</s>", "unk_token": "<unk>"}
    if bos:
        kwargs["bos_token"] = "<s>"
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, **kwargs)
    assert tok.pad_token is None  # the scorer must cope without a pad token
    return tok


def make_model(vocab_size: int, *, seed: int = 0, cls=None):
    import torch
    from transformers import LlamaForCausalLM

    from tests.helpers.tiny_llama import tiny_llama_config

    config = tiny_llama_config(
        vocab_size,
        max_positions=256,
        initializer_range=0.2,  # sharp predictions: errors in positions or masks show up
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    return (cls or LlamaForCausalLM)(config).eval()


def make_samples(n: int = 36, seed: int = 0) -> list[Sample]:
    """Random samples over the corpus words, with the invalid ones at :data:`INVALID` and a
    truncated response at 23."""
    rng = random.Random(seed)

    def text(lo: int, hi: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))

    out = [
        Sample(text(1, 12), text(1, 30), input=text(1, 6) if i % 3 == 0 else "") for i in range(n)
    ]
    special = {
        5: Sample(text(2, 4), ""),  # empty response
        11: Sample(text(2, 4), "  \n"),  # whitespace only: empty as well
        17: Sample(text(80, 90), text(3, 5)),  # prompt longer than max_length
        23: Sample(text(1, 3), text(60, 70)),  # response truncated at max_length
    }
    return [special.get(i, s) for i, s in enumerate(out)]


def assert_same_scores(out, ref, rtol: float = 1e-5) -> None:
    """Two IFDScores agree: same NaNs, values within ``rtol``, same token counts."""
    import numpy as np

    assert len(out) == len(ref)
    for name in ("ifd", "nll_cond", "nll_prior"):
        a, b = getattr(out, name), getattr(ref, name)
        assert a.dtype == np.float64
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=name)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=0, equal_nan=True, err_msg=name)
    np.testing.assert_array_equal(out.n_tokens, ref.n_tokens)
    assert out.n_invalid == ref.n_invalid

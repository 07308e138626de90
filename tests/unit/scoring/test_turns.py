"""Conversations scored turn by turn (docs/design.md, "IFD", conversations) against a small
independent implementation: one model call per sequence, token ids built by hand from the
template's known layout."""

from __future__ import annotations

import random

import numpy as np
import pytest

from iterit.data.sample import Sample
from tests.helpers.word_llama import WORDS

# '# <role> : <content> </s> !' per message; '!' is a separator after the end-of-turn token.
CHAT = (
    "{% set names = {'user': 'instruction', 'assistant': 'response', 'system': 'context'} %}"
    "{% for m in messages %}# {{ names[m['role']] }} : {{ m['content'] }} </s> ! {% endfor %}"
    "{% if add_generation_prompt %}# response : {% endif %}"
)
NAMES = {"user": "instruction", "assistant": "response", "system": "context"}


@pytest.fixture(scope="module")
def chat_tok(tok):
    tok.chat_template = CHAT
    return tok


def conversation(rng: random.Random, n_turns: int, system: bool = False) -> Sample:
    def text(lo: int, hi: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))

    turns: list[tuple[str, str]] = [("system", text(2, 4))] if system else []
    for _ in range(n_turns - 1):
        turns += [("user", text(1, 6)), ("assistant", text(1, 9))]
    turns.append(("user", text(1, 6)))
    return Sample(instruction="", response=text(1, 9), messages=tuple(turns))


def independent(model, tok, sample: Sample, max_length: int):
    """(IFD, [per-turn IFD]) by hand: the ids from the template's layout, one forward per
    sequence, means over every kept assistant token."""
    import torch

    def words(s: str) -> list[int]:
        return tok(s, add_special_tokens=False)["input_ids"]

    eos, sep = tok.eos_token_id, words("!")
    ids, turns = [], []  # the template renders no start token, and none is added
    for role, content in [*sample.messages, ("assistant", sample.response)]:
        ids += words(f"# {NAMES[role]} :")
        if role == "assistant":
            turns.append((len(ids), len(ids) + len(words(content)) + 1))
        ids += [*words(content), eos, *sep]
    ids = ids[:max_length]
    turns = [(a, min(b, len(ids))) for a, b in turns if a < len(ids)]

    def nll(seq: list[int]) -> np.ndarray:
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([seq])).logits[0].double(), -1)
        return -logp[:-1].gather(1, torch.tensor(seq[1:])[:, None])[:, 0].numpy()

    cond = nll(ids)
    c_turns = [cond[a - 1 : b - 1] for a, b in turns]
    p_turns = [nll([tok.bos_token_id, *ids[a:b]]) for a, b in turns]
    ifd = np.exp(np.concatenate(c_turns).mean() - np.concatenate(p_turns).mean())
    per_turn = [np.exp(c.mean() - p.mean()) for c, p in zip(c_turns, p_turns, strict=True)]
    return ifd, per_turn


@pytest.mark.parametrize("side", ["right", "left"])
def test_every_turn_scored_as_by_hand(model, chat_tok, side):
    from iterit.scoring import IFDScorer

    rng = random.Random(3)
    samples = [conversation(rng, 1 + i % 3, system=i % 2 == 1) for i in range(9)]
    chat_tok.padding_side = side
    try:
        scorer = IFDScorer(
            model, chat_tok, template="chat", max_length=200, batch_tokens=128, progress=False
        )
        got = scorer.score(samples)
    finally:
        chat_tok.padding_side = "right"
    assert got.turns == "all"
    for i, s in enumerate(samples):
        if s.n_turns < 2:  # one turn keeps the single-turn value (tested below)
            continue
        want, per_turn = independent(model, chat_tok, s, 200)
        assert got.ifd[i] == pytest.approx(want, rel=1e-5), i
        assert got.ifd_turns[i] == pytest.approx(per_turn, rel=1e-5), i
        assert len(got.ifd_turns[i]) == s.n_turns


def test_truncation_inside_a_middle_turn_drops_the_later_turns(model, chat_tok):
    from iterit.scoring import IFDScorer, encode_for_scoring

    s = conversation(random.Random(5), 3)
    enc = encode_for_scoring(chat_tok, [s], "chat", 10_000)
    (a1, _), (a2, b2), _ = enc.segments[0]
    cut = (a2 + b2) // 2 if b2 - a2 > 1 else b2
    got = IFDScorer(model, chat_tok, template="chat", max_length=cut, progress=False).score([s])
    want, per_turn = independent(model, chat_tok, s, cut)
    assert len(got.ifd_turns[0]) == 2 and got.n_truncated == 1
    assert got.ifd[0] == pytest.approx(want, rel=1e-5)
    assert got.ifd_turns[0] == pytest.approx(per_turn, rel=1e-5)
    # cut before the first assistant token: no turn left, NaN and counted
    none = IFDScorer(model, chat_tok, template="chat", max_length=a1, progress=False).score([s])
    assert np.isnan(none.ifd[0]) and none.n_invalid == 1 and none.ifd_turns[0] == []


def test_turns_last_and_one_turn_samples_keep_the_single_turn_value(model, chat_tok):
    from iterit.scoring import IFDScorer, reference_ifd

    rng = random.Random(7)
    samples = [conversation(rng, n) for n in (1, 2, 3, 1)]
    ref = reference_ifd(model, chat_tok, samples, template="chat", max_length=120)
    last = IFDScorer(
        model, chat_tok, template="chat", max_length=120, turns="last", progress=False
    ).score(samples)
    np.testing.assert_allclose(last.ifd, ref.ifd, rtol=1e-6)
    every = IFDScorer(model, chat_tok, template="chat", max_length=120, progress=False).score(
        samples
    )
    # one assistant turn: the same value under either choice
    np.testing.assert_allclose(every.ifd[[0, 3]], ref.ifd[[0, 3]], rtol=1e-6)
    assert not np.allclose(every.ifd[1:3], ref.ifd[1:3])


def test_turn_tokens_end_at_the_end_of_turn_token(chat_tok):
    from iterit.scoring import encode_for_scoring

    s = conversation(random.Random(9), 2)
    enc = encode_for_scoring(chat_tok, [s], "chat", 500)
    ids = enc.cond[0]
    for a, b in enc.segments[0]:
        assert ids[b - 1] == chat_tok.eos_token_id
        assert chat_tok.decode(ids[b : b + 1]) == "!"  # the separator belongs to no turn
        assert chat_tok.decode(ids[a - 2 : a]) == "response :"
    assert enc.n_tokens[0] == sum(b - a for a, b in enc.segments[0])


def test_cache_keeps_per_turn_values_and_never_mixes_choices(model, chat_tok, tmp_path):
    from iterit.scoring import IFDScorer

    samples = [conversation(random.Random(11), 3), conversation(random.Random(12), 1)]

    def run(turns: str):
        return IFDScorer(
            model,
            chat_tok,
            template="chat",
            max_length=200,
            turns=turns,
            progress=False,
            cache=tmp_path,
            model_id="m",
        ).score(samples)

    first = run("all")
    again = run("all")
    assert again.n_cached == 2 and again.ifd_turns == first.ifd_turns
    last = run("last")
    assert last.n_cached == 0 and len(last.ifd_turns[0]) == 1

"""Conversations for the word-level test tokenizer (:mod:`tests.helpers.word_llama`): a chat
template with a known token layout, random multi-turn samples, and the NLL of their assistant
turns computed by hand from that layout (one model call, no iterit code)."""

from __future__ import annotations

import random

import numpy as np

from iterit.data.sample import Sample
from tests.helpers.word_llama import WORDS

# '# <role> : <content> </s> !' per message ('!': a separator after the end-of-turn token).
CHAT = (
    "{% set names = {'user': 'instruction', 'assistant': 'response'} %}"
    "{% for m in messages %}# {{ names[m['role']] }} : {{ m['content'] }} </s> ! {% endfor %}"
    "{% if add_generation_prompt %}# response : {% endif %}"
)
_NAMES = {"user": "instruction", "assistant": "response"}


def chat_tokenizer():
    """The word-level tokenizer with :data:`CHAT` and EOS as its pad token."""
    from tests.helpers.word_llama import make_tokenizer

    tok = make_tokenizer()
    tok.chat_template = CHAT
    tok.pad_token = tok.eos_token
    return tok


def conversations(n: int, seed: int = 0, *, max_turns: int = 3) -> list[Sample]:
    """``n`` conversations with 1..``max_turns`` assistant turns (cycling), as Samples."""
    rng = random.Random(seed)

    def text() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6)))

    out = []
    for i in range(n):
        turns: list[tuple[str, str]] = []
        for _ in range(i % max_turns):
            turns += [("user", text()), ("assistant", text())]
        out.append(Sample("", text(), messages=(*turns, ("user", text()))))
    return out


def messages_rows(samples: list[Sample]) -> list[dict]:
    """The samples as ``messages`` records (a conversational dataset's rows)."""
    return [{"messages": s.conversation()} for s in samples]


def assistant_tokens_by_hand(tok, sample: Sample, turns: str = "all") -> tuple[list[int], list]:
    """The ids and the trained positions of a conversation from :data:`CHAT`'s layout: every
    assistant turn in one sequence (``all``), or the last turn after the rest as its prompt,
    with the start token first (``last``, the single-turn reading, which a conversation with
    one assistant turn keeps under either choice: docs/ifd.md, "Conversations")."""
    turns = "last" if sample.n_turns == 1 else turns

    def words(s: str) -> list[int]:
        return tok(s, add_special_tokens=False)["input_ids"]

    msgs = [*sample.messages, ("assistant", sample.response)]
    ids, scored = ([] if turns == "all" else [tok.bos_token_id]), []
    for k, (role, content) in enumerate(msgs):
        ids += words(f"# {_NAMES[role]} :")
        last = k == len(msgs) - 1
        if role == "assistant" and (turns == "all" or last):
            scored += range(len(ids), len(ids) + len(words(content)) + 1)
        ids += [*words(content), tok.eos_token_id, *([] if last else words("!"))]
    return ids, scored


def nll_by_hand(model, tok, sample: Sample, turns: str = "all") -> float:
    """The mean NLL of a conversation's trained assistant tokens (see
    :func:`assistant_tokens_by_hand`), in float64."""
    import torch

    ids, scored = assistant_tokens_by_hand(tok, sample, turns)
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)
    return float(np.mean([-logp[t - 1, ids[t]] for t in scored]))

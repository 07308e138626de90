"""``iterit score`` / ``select`` on a ShareGPT file with the chat template: every assistant
turn scored (``ifd_turns``), ``--turns last`` the older reading, and a scores file of one
choice refused for the other."""

from __future__ import annotations

import json

import pytest

from tests.helpers.cli import CHAT, fail, run
from tests.helpers.word_llama import CORPUS, make_model
from tests.unit.scoring.test_turns import CHAT as CHAT_TEMPLATE


@pytest.fixture(scope="module")
def chat_model_dir(tmp_path_factory):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from tests.helpers.tiny_llama import save_model

    texts = [
        *CORPUS,
        *(t["value"] for r in json.loads(CHAT.read_text()) for t in r["conversations"]),
    ]
    tk = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.train_from_iterator(
        texts, trainers.WordLevelTrainer(special_tokens=["<unk>", "<s>", "</s>"])
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk, eos_token="</s>", unk_token="<unk>", bos_token="<s>"
    )
    tok.chat_template = CHAT_TEMPLATE
    return save_model(tmp_path_factory.mktemp("chat"), make_model(len(tok)), tok)


def test_sharegpt_scores_every_turn_and_refuses_mixing(tmp_path, chat_model_dir):
    common = ["--model", chat_model_dir, "--template", "chat", "--no-progress", "--no-cache"]
    out = tmp_path / "all.jsonl"
    run("score", CHAT, *common, "--out", out)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    turns = [len(r["ifd_turns"]) for r in rows]
    assert turns == [2, 1, 2, 1, 1, 2, 0, 1]  # the record without an answer has none
    assert {r["turns"] for r in rows} == {"all"}
    last = tmp_path / "last.jsonl"
    run("score", CHAT, *common, "--turns", "last", "--out", last)
    old = [json.loads(line) for line in last.read_text().splitlines()]
    for a, b, n in zip(rows, old, turns, strict=True):
        if n == 1:
            assert a["ifd"] == b["ifd"]  # one assistant turn: the same value
        elif n == 2:
            assert a["n_tokens"] > b["n_tokens"]
    msg = fail("select", CHAT, "--scores", last, "--budget", "2", "--out", tmp_path / "s.jsonl")
    assert "turns=last, not all" in msg
    run(
        "select",
        CHAT,
        "--scores",
        last,
        "--turns",
        "last",
        "--budget",
        "2",
        "--out",
        tmp_path / "s.jsonl",
    )

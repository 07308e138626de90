"""IterITSFTTrainer as a drop-in for trl.SFTTrainer: the oracle is TRL itself.  The same
datasets go to a plain SFTTrainer (assistant_only_loss on a chat template with generation
marks; completion_only_loss) and to IterITSFTTrainer; the token ids and the trained-token
masks iterit uses (for training and for scoring) must equal what TRL prepares."""

from __future__ import annotations

import random

import pytest

from iterit.errors import ConfigError
from tests.helpers.word_llama import WORDS, make_model, make_tokenizer

trl = pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")

# The oracle is TRL's own masking: releases whose SFTConfig lacks either switch cannot be one.
_SFT_FIELDS = set(getattr(trl.SFTConfig, "__dataclass_fields__", {}))
if not {"assistant_only_loss", "completion_only_loss"} <= _SFT_FIELDS:
    pytest.skip(
        f"trl {trl.__version__} has no assistant_only_loss/completion_only_loss to compare with",
        allow_module_level=True,
    )

GEN_CHAT = (
    "{% set names = {'user': 'instruction', 'assistant': 'response', 'system': 'context'} %}"
    "{% for m in messages %}# {{ names[m['role']] }} : "
    "{% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] }} </s>{% endgeneration %}"
    " ! {% else %}{{ m['content'] }} </s> ! {% endif %}{% endfor %}"
    "{% if add_generation_prompt %}# response : {% endif %}"
)


def text(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def conversations(n: int = 8) -> list[dict]:
    rng = random.Random(0)
    rows = []
    for i in range(n):
        msgs = []
        for _ in range(1 + i % 3):
            msgs += [
                {"role": "user", "content": text(rng, 1, 6)},
                {"role": "assistant", "content": text(rng, 1, 8)},
            ]
        rows.append({"messages": msgs})
    return rows


@pytest.fixture
def tok():
    t = make_tokenizer()
    t.chat_template = GEN_CHAT
    t.pad_token = t.eos_token
    return t


def args(tmp_path, config_class=None, **kw):
    from iterit.training.compat import checkpointing_kwargs

    base = {
        "output_dir": str(tmp_path),
        "report_to": "none",
        "use_cpu": True,
        "max_length": 40,
        "disable_tqdm": True,
        **checkpointing_kwargs(trl.SFTConfig, False),
        **kw,
    }
    return (config_class or trl.SFTConfig)(**base)


def trl_rows(trainer) -> list[tuple[list[int], list[int]]]:
    """(input_ids, trained mask) of every row TRL prepared, truncated to max_length (by the
    dataset preparation in recent releases, by the collator before)."""
    out = []
    for row in trainer.train_dataset:
        ids = list(row["input_ids"])
        if row.get("labels") is not None:  # recent releases build the labels themselves
            mask = [int(x != -100) for x in row["labels"]]
        else:
            mask = list(row.get("assistant_masks") or row.get("completion_mask"))
        out.append((ids[:40], mask[:40]))
    return out


def iterit_rows(trainer) -> list[tuple[list[int], list[int]]]:
    return [
        (list(r["input_ids"]), [int(x != -100) for x in r["labels"]]) for r in trainer.train_dataset
    ]


def test_conversations_train_and_score_what_trl_prepares(tmp_path, tok):
    from iterit.scoring import encode_for_scoring
    from iterit.training import IterITSFTConfig, IterITSFTTrainer

    ds = datasets.Dataset.from_list(conversations())
    plain = trl.SFTTrainer(
        model=make_model(len(tok)),
        args=args(tmp_path / "a", assistant_only_loss=True),
        train_dataset=ds,
        processing_class=tok,
    )
    ours = IterITSFTTrainer(
        model=make_model(len(tok)),
        args=args(tmp_path / "b", IterITSFTConfig, iterit_budget=2),
        train_dataset=ds,
        processing_class=tok,
    )
    want, got = trl_rows(plain), iterit_rows(ours)
    samples = [ours.iterit.planner.samples[i] for i in range(len(want))]
    enc = encode_for_scoring(tok, samples, "chat", 40)
    for j, ((ids, mask), (our_ids, our_mask)) in enumerate(zip(want, got, strict=True)):
        trained = [t for t, m in zip(ids, mask, strict=True) if m]
        assert [t for t, m in zip(our_ids, our_mask, strict=True) if m] == trained, j
        if samples[j].n_turns == 1:
            # one assistant turn keeps the single-turn reading (docs/design.md, "IFD"): the
            # start token first, the sequence ending at the end-of-turn token
            assert our_ids == [tok.bos_token_id, *ids[: len(our_ids) - 1]], j
            continue
        assert (our_ids, our_mask) == (ids, mask), j
        # the scorer reads the same tokens: the conditional sequence and its scored ranges
        scored = [0] * len(ids)
        for a, b in enc.segments[j]:
            scored[a:b] = [1] * (b - a)
        assert enc.cond[j] == ids and scored == mask, j
    assert any(s.n_turns > 1 for s in samples) and ours.iterit.planner.budget == 2


def test_prompt_completion_strings_train_what_trl_prepares(tmp_path, tok):
    from iterit.training import IterITSFTTrainer

    rng = random.Random(1)
    rows = [{"prompt": text(rng, 2, 8), "completion": " " + text(rng, 1, 9)} for _ in range(6)]
    ds = datasets.Dataset.from_list(rows)
    plain = trl.SFTTrainer(
        model=make_model(len(tok)),
        args=args(tmp_path / "a", completion_only_loss=True),
        train_dataset=ds,
        processing_class=tok,
    )
    ours = IterITSFTTrainer(
        model=make_model(len(tok)),
        args=args(tmp_path / "b"),  # a plain SFTConfig: IterIT's defaults
        train_dataset=ds,
        processing_class=tok,
    )
    assert iterit_rows(ours) == trl_rows(plain)


def test_text_datasets_and_padding_free_are_refused_in_one_line(tmp_path, tok):
    from iterit.training import IterITSFTTrainer

    lm = datasets.Dataset.from_list([{"text": "the quick brown fox"}])
    with pytest.raises(ConfigError, match="IFD needs a prompt and a response"):
        IterITSFTTrainer(
            model=make_model(len(tok)),
            args=args(tmp_path),
            train_dataset=lm,
            processing_class=tok,
        )
    ds = datasets.Dataset.from_list(conversations(2))
    with pytest.raises(ConfigError, match="padding_free=False"):
        IterITSFTTrainer(
            model=make_model(len(tok)),
            args=args(tmp_path, padding_free=True),
            train_dataset=ds,
            processing_class=tok,
        )


def test_config_fields_do_not_clash_and_default_to_the_device_precision():
    import dataclasses

    from iterit.training import IterITSFTConfig

    names = {f.name for f in dataclasses.fields(trl.SFTConfig)}
    ours = {f.name for f in dataclasses.fields(IterITSFTConfig)} - names
    assert ours and all(n.startswith("iterit_") for n in ours)
    cfg = IterITSFTConfig(output_dir="x", use_cpu=True, report_to="none")
    assert cfg.bf16 in (False, True) and cfg.iterit_turns == "all"


@pytest.mark.parametrize(
    ("variant", "turns"), [("superfiltering", "all"), ("loss-ratio", "last"), ("iterit", "last")]
)
def test_ifd_variant_and_turns_of_the_config_reach_epoch_0_scores(tmp_path, tok, variant, turns):
    """The epoch-0 selection's scores are IFDScorer's with the config's IFD variant and turns:
    the settings reach the scorer (different settings give different scores here)."""
    import numpy as np

    from iterit.scoring import IFDScorer
    from iterit.training import IterITSFTConfig, IterITSFTTrainer

    ds = datasets.Dataset.from_list(conversations())
    ours = IterITSFTTrainer(
        model=make_model(len(tok)),
        args=args(
            tmp_path,
            IterITSFTConfig,
            iterit_budget=2,
            iterit_pool_factor=4.0,
            iterit_ifd_variant=variant,
            iterit_turns=turns,
            bf16=False,  # scored as IFDScorer scores below, without autocast
        ),
        train_dataset=ds,
        processing_class=tok,
    )
    samples = ours.iterit.samples
    ours.state.epoch = 0.0
    ours.iterit.on_epoch_begin(ours.args, ours.state, ours.control, model=ours.model)
    record = ours.iterit.records[0]

    def ifd(**settings):
        scorer = IFDScorer(
            ours.model, tok, template="chat", max_length=40, progress=False, **settings
        )
        return scorer.score(samples).ifd

    want, default = ifd(ifd_variant=variant, turns=turns), ifd()
    picks, pool = np.asarray(record.picks), ours.iterit.pool
    np.testing.assert_allclose(np.asarray(record.ifd, dtype=float), want[picks], rtol=1e-6)
    np.testing.assert_allclose(ours.iterit.pool_scores, want[pool], rtol=1e-6)
    assert not np.allclose(want, default, equal_nan=True)

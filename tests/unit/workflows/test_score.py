"""iterit.workflows.score: ``iterit score`` as a library function.  The metric and the output
format are checked before any scoring; the IFD columns written are those the scorer returned
(a fake scorer, then a tiny Llama against the reference scorer); the learning percentage's
training is configured as its settings say (the trainer replaced: no Trainer.train() here)."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import pytest

from iterit.artifacts.score_files import SCORE_COLUMNS, read_table, sample_keys
from iterit.config import SCORE_METRICS, ScoringConfig, TrainConfig
from iterit.data.sample import Sample
from iterit.errors import (
    ConfigError,
    InvalidInputError,
    MissingDependencyError,
    OutputExistsError,
)
from iterit.scoring.results import IFDScores
from iterit.workflows import score as wf

SAMPLES = [
    Sample("name a fruit", "apple"),
    Sample("write a poem", ""),  # no score
    Sample("add two and two", "four", input="2 + 2"),
]


def fake_ifd(n: int = 3, dtype: str = "bfloat16") -> IFDScores:
    return IFDScores(
        ifd=np.array([0.5, np.nan, 1.25]),
        nll_cond=np.array([1.0, np.nan, 2.0]),
        nll_prior=np.array([1.5, np.nan, 1.8]),
        n_tokens=np.array([2, 0, 3], dtype=np.int64),
        n_invalid=1,
        dtype=dtype,
    )


@pytest.fixture
def scorer(monkeypatch):
    """Replaces the IFD scorer; records what it was called with."""
    calls = []

    def score_samples(samples, *, model, scoring=None, log=None):
        calls.append(SimpleNamespace(samples=samples, model=model, scoring=scoring, log=log))
        return fake_ifd(len(samples))

    monkeypatch.setattr(wf, "score_samples", score_samples)
    return calls


def no_scoring(*args, **kwargs):
    raise AssertionError("scored before the inputs were checked")


# ------------------------------------------------------------------------ checks before work


def test_the_metrics_are_the_configs():
    assert wf.METRICS == SCORE_METRICS == ("ifd", "learning-percentage")


def test_an_unknown_metric_is_refused_before_scoring(monkeypatch, tmp_path):
    monkeypatch.setattr(wf, "score_samples", no_scoring)
    monkeypatch.setattr(wf, "learning_percentage", no_scoring)
    out = tmp_path / "s.jsonl"
    with pytest.raises(InvalidInputError) as info:
        wf.score_to_file(SAMPLES, out, metric="perplexity", model="m")
    assert str(info.value) == (
        "unknown metric 'perplexity' (expected one of: ifd, learning-percentage)"
    )
    assert not out.exists()


def test_parquet_without_pyarrow_is_refused_before_scoring(monkeypatch, tmp_path):
    monkeypatch.setattr(wf, "score_samples", no_scoring)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow fails
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    out = tmp_path / "s.parquet"
    with pytest.raises(MissingDependencyError) as info:
        wf.score_to_file(SAMPLES, out, model="m")
    msg = str(info.value)
    assert str(out) in msg and "pip install" in msg and ".jsonl" in msg and "\n" not in msg
    assert not out.exists()


def test_the_metric_is_matched_in_any_case(scorer, tmp_path):
    done = wf.score_to_file(SAMPLES, tmp_path / "s.jsonl", metric="IFD", model="m")
    assert done.metric == "ifd" and len(scorer) == 1


# ------------------------------------------------------------------------------------- IFD


def test_the_ifd_file_holds_what_the_scorer_returned(scorer, tmp_path):
    cfg = ScoringConfig(max_length=64, dtype="float32", progress=False)
    messages = []
    out = tmp_path / "s.jsonl"
    done = wf.score_to_file(SAMPLES, out, model="tiny", scoring=cfg, log=messages.append)
    assert scorer[0].model == "tiny" and scorer[0].scoring is cfg
    assert scorer[0].log == messages.append and list(scorer[0].samples) == SAMPLES
    assert done.path == out and done.metric == "ifd" and done.seconds >= 0
    assert isinstance(done.scores, IFDScores)
    cols = read_table(out)
    # The dtype the scorer reported, then which turns were scored and their per-turn IFDs.
    assert tuple(cols) == (*SCORE_COLUMNS, "dtype", "turns", "ifd_turns")
    assert cols["index"] == [0, 1, 2]
    assert cols["ifd"] == [0.5, None, 1.25] and cols["n_tokens"] == [2, 0, 3]
    assert cols["nll_prior"] == [1.5, None, 1.8]
    assert cols["valid"] == [True, False, False]  # the candidate rule: 0 < IFD < 1
    assert cols["key"] == sample_keys(SAMPLES)
    assert cols["dtype"] == ["bfloat16"] * 3
    assert list(done.columns) == list(cols)


def test_a_scorer_that_ran_nothing_writes_no_dtype_column(monkeypatch, tmp_path):
    monkeypatch.setattr(wf, "score_samples", lambda s, **kw: fake_ifd(dtype=""))
    wf.score_to_file(SAMPLES, tmp_path / "s.jsonl", model="m")
    assert tuple(read_table(tmp_path / "s.jsonl")) == (*SCORE_COLUMNS, "turns", "ifd_turns")


def test_a_non_default_variant_is_recorded(scorer, tmp_path):
    cfg = ScoringConfig(ifd_variant="superfiltering")
    wf.score_to_file(SAMPLES, tmp_path / "s.csv", model="m", scoring=cfg)
    assert read_table(tmp_path / "s.csv")["ifd_variant"] == ["superfiltering"] * 3


@pytest.mark.parametrize("name", ["s.jsonl", "s.json", "s.csv", "s.parquet"])
def test_every_format_round_trips(scorer, tmp_path, name):
    if name.endswith(".parquet"):
        pytest.importorskip("pyarrow")
    wf.score_to_file(SAMPLES, tmp_path / name, model="m")
    cols = read_table(tmp_path / name)
    ifd = [np.nan if v in (None, "") else float(v) for v in cols["ifd"]]  # CSV: text, "" null
    np.testing.assert_allclose(ifd, [0.5, np.nan, 1.25], equal_nan=True)
    assert [int(k) for k in cols["n_tokens"]] == [2, 0, 3]


def test_an_existing_file_is_kept_unless_overwritten(scorer, tmp_path):
    out = tmp_path / "s.jsonl"
    out.write_text("old\n")
    with pytest.raises(OutputExistsError, match=r"s\.jsonl"):
        wf.score_to_file(SAMPLES, out, model="m")
    assert out.read_text() == "old\n"
    wf.score_to_file(SAMPLES, str(out), model="m", overwrite=True)
    assert len(read_table(out)["ifd"]) == 3


def test_samples_without_responses_need_no_model(tmp_path):
    # Nothing to send to a model: the real scorer loads none (the name does not exist).
    empty = [Sample("a", ""), Sample("b", "   ")]
    done = wf.score_to_file(empty, tmp_path / "s.jsonl", model="no/such-model")
    cols = read_table(tmp_path / "s.jsonl")
    assert cols["ifd"] == [None, None] and cols["valid"] == [False, False]
    assert done.scores.n_empty_response == 2


def test_a_tiny_llama_s_file_matches_the_reference_scorer(tmp_path):
    pytest.importorskip("transformers")
    from iterit.scoring import reference_ifd
    from tests.helpers.word_llama import MAX_LEN, make_model, make_samples, make_tokenizer

    tok = make_tokenizer()
    model = make_model(len(tok))
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    samples = make_samples(8)
    cfg = ScoringConfig(max_length=MAX_LEN, dtype="float32", device="cpu", progress=False)
    done = wf.score_to_file(samples, tmp_path / "s.jsonl", model=str(tmp_path / "m"), scoring=cfg)
    ref = reference_ifd(model, tok, samples, max_length=MAX_LEN)
    cols = read_table(tmp_path / "s.jsonl")
    got = np.array([np.nan if v is None else v for v in cols["ifd"]])
    np.testing.assert_allclose(got, ref.ifd, rtol=1e-5, equal_nan=True)
    assert cols["n_tokens"] == ref.n_tokens.tolist() and cols["dtype"] == ["float32"] * 8
    assert done.scores.model == str(tmp_path / "m")


# ------------------------------------------------------------------------ learning percentage


def test_lp_training_defaults_are_the_train_configs():
    lp = wf.LPTraining()
    t = TrainConfig
    assert (lp.epochs, lp.learning_rate, lp.batch_size, lp.micro_batch_size, lp.seed) == (
        t.epochs,
        t.learning_rate,
        t.batch_size,
        t.micro_batch_size,
        t.seed,
    )


@pytest.fixture
def lp_trainer(monkeypatch):
    """Replaces the model loader and the learning-percentage trainer; records their calls."""
    pytest.importorskip("transformers")
    from iterit.scoring import model as scoring_model
    from iterit.training import learning_percentage as lp_module

    seen = SimpleNamespace(load=None, train=None, result=object(), error=None)

    def load(name, *, device, dtype, **_):
        seen.load = (name, device, dtype)
        return SimpleNamespace(model="MODEL", tokenizer="TOKENIZER")

    def train(samples, model, tokenizer, **kwargs):
        seen.train = SimpleNamespace(samples=samples, model=model, tokenizer=tokenizer, **kwargs)
        if seen.error is not None:
            raise seen.error
        return seen.result

    monkeypatch.setattr(scoring_model, "load_scoring_model", load)
    monkeypatch.setattr(lp_module, "score_learning_percentage", train)
    return seen


def test_lp_trains_float32_weights_as_its_settings_say(lp_trainer):
    cfg = ScoringConfig(
        template="plain", max_length=128, batch_tokens=256, dtype="float32", device="cpu"
    )
    train = wf.LPTraining(epochs=2, learning_rate=1e-3, batch_size=8, micro_batch_size=2, seed=7)
    messages = []
    got = wf.learning_percentage(
        SAMPLES, model="small", scoring=cfg, training=train, log=messages.append
    )
    assert got is lp_trainer.result
    assert lp_trainer.load == ("small", "cpu", "float32")  # the trainer places the weights
    t = lp_trainer.train
    assert (t.model, t.tokenizer, list(t.samples)) == ("MODEL", "TOKENIZER", SAMPLES)
    assert t.training == train and t.scoring == cfg  # passed whole
    args = t.training_args
    assert args["report_to"] == "none" and args["bf16"] is False and args["use_cpu"] is True
    assert messages == ["loading small ..."]


def test_lp_mixes_bf16_on_the_cpu_when_asked(lp_trainer):
    messages = []
    cfg = ScoringConfig(dtype="bfloat16", device="cpu")
    wf.learning_percentage(SAMPLES, model="small", scoring=cfg, log=messages.append)
    assert lp_trainer.load[2] == "float32"  # weights stay float32
    args = lp_trainer.train.training_args
    assert args["bf16"] is True and args["use_cpu"] is True
    assert "training in bfloat16 mixed precision on the CPU" in messages


def test_a_value_error_of_training_is_an_invalid_input(lp_trainer):
    lp_trainer.error = ValueError("no sample fits in max_length")
    cfg = ScoringConfig(dtype="float32", device="cpu")
    with pytest.raises(InvalidInputError) as info:
        wf.learning_percentage(SAMPLES, model="small", scoring=cfg)
    assert str(info.value) == "no sample fits in max_length"
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_iterits_own_errors_of_training_pass_unchanged(lp_trainer):
    err = ConfigError("epochs must be at least 1")
    lp_trainer.error = err
    with pytest.raises(ConfigError) as info:
        wf.learning_percentage(SAMPLES, model="small", scoring=ScoringConfig(device="cpu"))
    assert info.value is err


def test_the_lp_file_holds_the_lp_columns(monkeypatch, tmp_path):
    pytest.importorskip("transformers")
    from iterit.training.learning_percentage import LPScores

    lp = LPScores(
        ppl=np.array([[4.0, 3.0, 2.0], [2.0, 2.5, 1.0]]),
        lp=np.array([0.5, np.nan, 0.25]),
        lp_proxy=np.array([0.5, -0.2, 0.5]),
        complexity=np.array([0.5, np.nan, 0.25]),
        n_tokens=np.array([2, 0, 3]),
        signal="lp",
    )
    calls = []

    def fake_lp(samples, *, model, scoring, training, log):
        calls.append((model, scoring, training))
        return lp

    monkeypatch.setattr(wf, "learning_percentage", fake_lp)
    monkeypatch.setattr(wf, "score_samples", no_scoring)
    train = wf.LPTraining(epochs=1)
    out = tmp_path / "lp.jsonl"
    done = wf.score_to_file(
        SAMPLES, out, metric="Learning-Percentage", model="small", training=train
    )
    assert done.metric == "learning-percentage" and done.scores is lp
    assert calls[0][0] == "small" and calls[0][2] is train
    assert isinstance(calls[0][1], ScoringConfig)  # the default settings, never None
    cols = read_table(out)
    assert list(cols) == [
        "index",
        "complexity",
        "lp",
        "lp_proxy",
        "ppl_0",
        "ppl_1",
        "n_tokens",
        "valid",
        "key",
    ]
    assert cols["complexity"] == [0.5, None, 0.25] and cols["ppl_1"] == [2.0, 2.5, 1.0]
    assert cols["valid"] == [True, False, True] and cols["key"] == sample_keys(SAMPLES)

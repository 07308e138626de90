"""Which selection trains the better model: the arms of ``iterit compare`` (docs/compare.md).

Every arm is one run of :func:`iterit.training.run.train` (the code of ``iterit train``) with the
same :class:`~iterit.config.TrainConfig` except the arm's selection fields
(:data:`iterit.config.COMPARE_ARMS`), so the arms share the initial weights, seed, budget,
schedule and effective batch.  Epoch-0 IFD is computed once, written to ``DIR/scores.jsonl`` and
given to every arm that selects by it.  After every epoch each arm is evaluated on every
evaluation set (mean NLL of the reference responses, :mod:`iterit.scoring.evaluate`).  An arm
whose summary exists is finished and is not run again; an interrupted arm resumes from its last
checkpoint.  Every reusable piece (the shared scores, the epoch-0 evaluation, each arm) records
the settings and inputs that made it (:mod:`iterit.artifacts.run_keys`) and is reused only when
they are this run's.  With several seeds every arm runs once per seed, and
:mod:`iterit.workflows.compare_stats` says whether the arms' differences are real.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iterit.artifacts.compare_files import (
    ArmSummary,
    read_arm_summary,
    write_arm_summary,
    write_compare_csv,
    write_compare_json,
)
from iterit.artifacts.names import (
    COMPARE_ARM_SUMMARY,
    COMPARE_ARMS_DIR,
    COMPARE_BASE_EVAL_ROWS,
    COMPARE_CSV,
    COMPARE_EVAL_ROWS,
    COMPARE_JSON,
    COMPARE_SCORES,
    COMPARE_SCORES_INFO,
    COMPARE_SETTINGS,
)
from iterit.artifacts.run_keys import check_key, file_key, read_key, samples_key, write_key
from iterit.config import COMPARE_ARMS, TrainConfig, resolve_budget
from iterit.data.keys import content_keys
from iterit.data.sample import Sample, as_sample
from iterit.errors import ConfigError, DataError
from iterit.utils.atomic import atomic_open, with_run_folder_lock
from iterit.workflows.compare_stats import summarize

__all__ = [
    "HELD_OUT_EVAL",
    "TABLE_COLUMNS",
    "CompareResult",
    "arm_dir",
    "compare",
    "held_out_split",
    "parse_arms",
    "parse_seeds",
]

#: Name of the evaluation set held out of the data when no evaluation file is given.
HELD_OUT_EVAL = "held-out"
#: The columns of the comparison table (compare.csv, compare.json's rows).
TABLE_COLUMNS = ("arm", "seed", "epoch", "eval", "nll", "n_tokens", "n_samples")


@dataclass
class CompareResult:
    """``rows``: one dict per arm, seed, epoch and evaluation set (epoch 0: the initial model,
    arm ``base``, no seed); ``arms``: per arm and seed (``ARM/seed-N``) its compute (forward
    tokens) and wall time by phase; ``summary``: :func:`iterit.workflows.compare_stats.summarize`
    of the rows (mean NLL with intervals, differences to ``random`` with verdicts)."""

    output_dir: Path
    rows: list[dict[str, Any]]
    arms: dict[str, ArmSummary]
    settings: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def parse_arms(arms: str | Sequence[str]) -> list[str]:
    """The arm names of a comma-separated list (or a sequence), checked, in order, no repeats."""
    names = [a.strip().lower() for a in (arms.split(",") if isinstance(arms, str) else arms)]
    names = [a for a in dict.fromkeys(names) if a]
    bad = [a for a in names if a not in COMPARE_ARMS]
    if bad or not names:
        raise ConfigError(
            f"unknown arm(s) {', '.join(bad) or '(none given)'} "
            f"(expected some of: {', '.join(COMPARE_ARMS)})"
        )
    return names


def parse_seeds(seeds: str | Sequence[int] | None, default: int) -> list[int]:
    """The seeds of a comma-separated list (or a sequence), in order, no repeats; ``None``:
    ``[default]``."""
    if seeds is None:
        return [int(default)]
    items = seeds.split(",") if isinstance(seeds, str) else list(seeds)
    try:
        out = [int(str(s).strip()) for s in items if str(s).strip()]
    except ValueError:
        msg = f"seeds must be whole numbers separated by commas, got {seeds!r}"
        raise ConfigError(msg) from None
    if not out:
        raise ConfigError("give at least one seed")
    return list(dict.fromkeys(out))


def arm_dir(folder: str | Path, arm: str, seed: int) -> Path:
    """The training run folder of ``arm`` with ``seed`` in the comparison folder ``folder``."""
    return Path(folder) / COMPARE_ARMS_DIR / arm / f"seed-{seed}"


def held_out_split(
    samples: Sequence[Sample], fraction: float = 0.1
) -> tuple[list[Sample], list[Sample]]:
    """``(train, held_out)``: the samples whose content key, read as a number, falls in the
    lowest ``fraction`` of the key space are held out (at least one).  Deterministic, and the
    same whatever the order of the data or the other records (a sample's own text decides)."""
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"the held-out fraction must be in (0, 1), got {fraction}")
    keys = content_keys(samples)
    limit = fraction * 16**8
    held = [int(k[:8], 16) < limit for k in keys]
    if not any(held):  # tiny data: hold out the sample with the lowest key
        held[min(range(len(keys)), key=keys.__getitem__)] = True
    train = [s for s, h in zip(samples, held, strict=True) if not h]
    if not train:
        raise ConfigError("the data is too small to hold out an evaluation split")
    return train, [s for s, h in zip(samples, held, strict=True) if h]


def _load(path: str | Path, cfg: TrainConfig, data_format: str | None = None) -> list[Sample]:
    from iterit.data import load

    fmt = cfg.data_format if data_format is None else data_format
    loaded = load(path, format=fmt, fields=cfg.fields, split=cfg.split)
    samples = [as_sample(s, i) for i, s in enumerate(loaded.samples)]
    if not any(s.response.strip() for s in samples):
        raise DataError("every response is empty: nothing to train on or evaluate", path=path)
    return samples


def _eval_sets(
    cfg: TrainConfig,
    samples: list[Sample],
    eval_files: Sequence[str | Path],
    fraction: float,
    eval_format: str = "auto",
) -> tuple[list[Sample], dict[str, list[Sample]]]:
    """The training samples and the evaluation sets by name; each evaluation file is read in
    its own format (``eval_format``: ``auto`` detects it per file), not the training data's."""
    if not eval_files:
        train, held = held_out_split(samples, fraction)
        return train, {HELD_OUT_EVAL: held}
    sets: dict[str, list[Sample]] = {}
    plain = dataclasses.replace(cfg, fields=None, split=None)
    for path in eval_files:
        name = Path(path).name
        while name in sets:
            name += "'"
        sets[name] = _load(path, plain, eval_format)
    return samples, sets


def _check_budget(cfg: TrainConfig, samples: Sequence[Sample]) -> None:
    """Every arm trains on the same number of samples: a budget above the data is refused
    before any work (else the arms would each fall short by a different amount)."""
    n = sum(1 for s in samples if s.response.strip())
    m = resolve_budget(cfg.budget, len(samples))
    if m > n:
        raise ConfigError(
            f"budget {cfg.budget} asks for {m} samples per epoch, more than the {n} training "
            "samples with a response: the arms would train on fewer samples than asked, and on "
            "different numbers of them; lower the budget"
        )


def _cap_to_candidates(
    cfg: TrainConfig, samples: list[Sample], scores_path: Path | None, say: Any
) -> TrainConfig:
    """The IFD arms choose among candidates only (IFD in (0, 1), docs/design.md "Candidates"):
    when fewer training samples than the budget are candidates at epoch 0, every arm's budget
    is capped to that number, said once, so that the arms still train on equal counts."""
    if scores_path is None or cfg.scores is not None:  # a given scores file: its own rule
        return cfg
    from iterit.artifacts.score_files import read_scores
    from iterit.data.candidates import IFD_MAX, candidate_mask

    k = int(candidate_mask(read_scores(scores_path, samples)["ifd"], IFD_MAX).sum())
    m = resolve_budget(cfg.budget, len(samples))
    if k >= m:
        return cfg
    if k == 0:
        raise DataError(
            "no training sample is an IFD candidate (IFD in (0, 1)) with the initial model: "
            "the IFD arms have nothing to select",
            path=scores_path,
        )
    say(
        f"budget capped at {k} samples for every arm: only {k} of the {len(samples)} training "
        f"samples are IFD candidates (IFD < 1) with the initial model, fewer than the {m} asked"
    )
    return dataclasses.replace(cfg, budget=k)


@dataclass(frozen=True)
class _Keys:
    """The settings and inputs each reusable piece of a comparison depends on, in the order a
    mismatch is reported (docs/compare.md, "Resuming")."""

    common: dict[str, Any]
    scores: dict[str, Any]
    base: dict[str, Any]

    @classmethod
    def of(
        cls, cfg: TrainConfig, samples: list[Sample], eval_sets: Mapping[str, list[Sample]]
    ) -> _Keys:
        model = {"model": file_key(cfg.model)}
        evals = {"eval": {name: samples_key(s) for name, s in eval_sets.items()}}
        scoring = {"template": cfg.template, "max_length": cfg.max_length, "turns": cfg.turns}
        precision = {"dtype": cfg.dtype, "bf16": cfg.bf16}
        return cls(
            common={**model, "data": samples_key(samples), **evals},
            scores={
                **model,
                "data": samples_key(samples),
                **scoring,
                "ifd_variant": cfg.ifd_variant,
                **precision,
            },
            base={**model, **evals, **scoring, **precision},
        )

    def arm(self, cfg: TrainConfig) -> dict[str, Any]:
        """An arm's key: the inputs, then its whole training configuration (but where it is
        written and how it reports)."""
        settings = cfg.to_json()
        first = ("template", "max_length", "ifd_variant", "dtype", "seed", "budget", "epochs")
        first += ("strategy", "iterate", "rescore")
        skip = {"model", "data", "data_format", "fields", "split", "output_dir", "progress"}
        skip |= {"resume_from_checkpoint", "score_cache", "report_to", "logging_steps"}
        skip |= {"scores", "device"}
        rest = {k: v for k, v in sorted(settings.items()) if k not in skip and k not in first}
        scores = {"scores": file_key(cfg.scores) if cfg.scores is not None else None}
        return {**self.common, **{k: settings[k] for k in first}, **scores, **rest}


def _clear(folder: Path) -> None:
    """Start a comparison folder again: remove every reusable piece an earlier run left."""
    shutil.rmtree(folder / COMPARE_ARMS_DIR, ignore_errors=True)
    for name in (COMPARE_SCORES, COMPARE_SCORES_INFO, COMPARE_BASE_EVAL_ROWS, COMPARE_SETTINGS):
        (folder / name).unlink(missing_ok=True)


def _score_epoch0(
    cfg: TrainConfig, samples: list[Sample], out: Path, model: Any, tok: Any
) -> dict[str, Any]:
    """IFD of every training sample with the initial model, written once to ``out``."""
    from iterit.artifacts.score_files import ifd_columns, write_table
    from iterit.scoring import IFDScorer
    from iterit.training.run import precision
    from iterit.training.scoring_adapter import scoring_autocast

    t0 = time.perf_counter()
    # The run's scoring settings, without the score cache: compare keeps its own scores file.
    scorer = IFDScorer.from_config(model, tok, dataclasses.replace(cfg.scoring, cache=None))
    # As the training callback scores the model it trains: under its mixed precision.
    with scoring_autocast(model, precision(cfg).autocast):
        scores = scorer.score(samples)
    cols = {
        "ifd": scores.ifd,
        "nll_cond": scores.nll_cond,
        "nll_prior": scores.nll_prior,
        "n_tokens": scores.n_tokens,
    }
    write_table(out, ifd_columns(cols, samples, variant=cfg.ifd_variant), overwrite=True)
    stats = scores.stats
    return {"seconds": time.perf_counter() - t0, "forward_tokens": stats.forward_tokens}


def _shared_scores(
    cfg: TrainConfig, samples: list[Sample], folder: Path, arms: list[str], key: dict[str, Any]
) -> tuple[Path | None, dict[str, Any]]:
    """The epoch-0 scores file the scoring arms share (computed once, reused when it was made
    with this run's ``key``)."""
    if not any(COMPARE_ARMS[a]["strategy"] in ("iterit", "ifd") for a in arms):
        return None, {"seconds": 0.0, "forward_tokens": 0}
    if cfg.scores is not None:
        return Path(cfg.scores), {"seconds": 0.0, "forward_tokens": 0}
    path = folder / COMPARE_SCORES
    info_path = folder / COMPARE_SCORES_INFO
    if path.is_file() or info_path.is_file():
        info = read_key(info_path) or {}
        check_key("the epoch-0 scores", path, info.get("settings"), key)
        if path.is_file() and "seconds" in info:
            return path, info
    from iterit.training.run import load_training_model

    model, tok = load_training_model(cfg, placed=True)
    info = {**_score_epoch0(cfg, samples, path, model, tok), "settings": key}
    with atomic_open(info_path, "w", overwrite=True) as f:
        json.dump(info, f, default=str)
    return path, info


def _base_rows(
    cfg: TrainConfig, folder: Path, eval_sets: Mapping[str, list[Sample]], key: dict[str, Any]
) -> list[dict[str, Any]]:
    """Epoch 0: the initial model on every evaluation set (arm ``base``), computed once and
    reused when it was made with this run's ``key``."""
    from iterit.training.run import load_training_model

    path = folder / COMPARE_BASE_EVAL_ROWS
    if path.is_file():
        check_key("the epoch-0 evaluation", path, read_key(folder / COMPARE_SETTINGS), key)
    else:
        write_key(folder / COMPARE_SETTINGS, key)
    cb = _eval_callback(cfg, eval_sets, None, path)
    if {r["eval"] for r in cb.rows} != set(eval_sets):
        model, tok = load_training_model(cfg, placed=True)
        cb = _eval_callback(cfg, eval_sets, tok, path)
        cb.evaluate(model, 0)
    return [{"arm": "base", "seed": None, **r} for r in cb.rows]


def _eval_callback(
    cfg: TrainConfig, eval_sets: Mapping[str, list[Sample]], tok: Any, path: Path
) -> Any:
    from iterit.training.eval_callback import EvalCallback

    settings = {
        "template": cfg.template,
        "max_length": cfg.max_length,
        "batch_tokens": None,
        "turns": cfg.turns,
    }
    return EvalCallback(eval_sets, tok, **settings, path=path)


def _run_arm(
    name: str,
    cfg: TrainConfig,
    samples: list[Sample],
    eval_sets: Mapping[str, list[Sample]],
    epoch0: dict[str, Any],
) -> ArmSummary:
    """Train one arm (resuming its last checkpoint) and return its summary."""
    from iterit.training.datasets import encode_samples
    from iterit.training.run import load_training_model, train
    from iterit.training.scoring_adapter import IFDScoreFn

    out = Path(cfg.output_dir)
    resume = any(out.glob("checkpoint-*")) or None
    cfg = dataclasses.replace(cfg, resume_from_checkpoint=resume)
    t0 = time.perf_counter()
    model, tok = load_training_model(cfg)
    cb = _eval_callback(cfg, eval_sets, tok, out / COMPARE_EVAL_ROWS)
    result = train(cfg, samples=samples, model=model, tokenizer=tok, callbacks=[cb])
    wall = time.perf_counter() - t0
    lengths = [len(r["input_ids"]) for r in encode_samples(samples, tok, cfg.scoring)]
    records = result.callback.records
    train_tokens = sum(lengths[i] for r in records.values() for i in r.picks)
    timings = result.summary.epochs
    score_s = sum(e.seconds("score_s") for e in timings)
    select_s = sum(e.seconds("select_s") for e in timings)
    fn = result.callback.score_fn
    uses_scores = COMPARE_ARMS[name]["strategy"] in ("iterit", "ifd")
    summary = ArmSummary(
        arm=name,
        seed=cfg.seed,
        settings=dict(COMPARE_ARMS[name]),
        epoch0_scoring_seconds=epoch0["seconds"] if uses_scores else 0.0,
        scoring_seconds=score_s + (epoch0["seconds"] if uses_scores else 0.0),
        selecting_seconds=select_s,
        evaluating_seconds=cb.seconds,
        training_seconds=max(0.0, wall - score_s - select_s - cb.seconds),
        scoring_forward_tokens=(fn.forward_tokens if isinstance(fn, IFDScoreFn) else 0)
        + (int(epoch0["forward_tokens"]) if uses_scores else 0),
        training_forward_tokens=int(train_tokens),
        evaluating_forward_tokens=int(sum(r["forward_tokens"] for r in cb.rows)),
        rows=[
            {"arm": name, "seed": cfg.seed, **r}
            for r in sorted(cb.rows, key=lambda r: (r["epoch"], r["eval"]))
        ],
    )
    write_arm_summary(out / COMPARE_ARM_SUMMARY, summary)
    return summary


def _arm(
    name: str,
    cfg: TrainConfig,
    keys: _Keys,
    samples: list[Sample],
    eval_sets: Mapping[str, list[Sample]],
    epoch0: dict[str, Any],
    say: Any,
) -> ArmSummary:
    """One arm with one seed: its finished summary when it was made with this run's settings,
    else trained (resumed when an interrupted run with the same settings left checkpoints)."""
    out = Path(cfg.output_dir)
    key = keys.arm(cfg)
    label = f"arm {name} seed {cfg.seed}"
    if out.is_dir() and any(out.iterdir()):
        check_key(f"the {label}", out, read_key(out / COMPARE_SETTINGS), key)
        if (out / COMPARE_ARM_SUMMARY).is_file():
            say(f"{label}: finished before with the same settings, not run again")
            return read_arm_summary(out / COMPARE_ARM_SUMMARY)
    write_key(out / COMPARE_SETTINGS, key)
    say(f"{label}: training")
    return _run_arm(name, cfg, samples, eval_sets, epoch0)


def _table(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{k: r.get(k) for k in TABLE_COLUMNS} for r in rows]


# The whole run holds its folder: a second compare into it fails at once (docs/faults.md).
@with_run_folder_lock(lambda config, *_args, **_kwargs: config.output_dir)
def compare(
    config: TrainConfig,
    arms: str | Sequence[str],
    *,
    seeds: str | Sequence[int] | None = None,
    eval_files: Sequence[str | Path] = (),
    eval_format: str = "auto",
    held_out: float = 0.1,
    overwrite: bool = False,
    log: Any = None,
) -> CompareResult:
    """Train every arm of ``arms`` once per seed of ``seeds`` (default: ``config.seed``) on
    ``config.data`` into ``config.output_dir/arms/<arm>/seed-<seed>`` and evaluate them after
    every epoch; writes ``compare.csv`` and ``compare.json`` to ``config.output_dir`` (see the
    module docstring and docs/compare.md).  ``overwrite``: start the folder again instead of
    refusing what an earlier run with other settings left there."""
    say = log or (lambda _msg: None)
    names = parse_arms(arms)
    seed_list = parse_seeds(seeds, config.seed)
    if config.data is None or config.model is None:
        raise ConfigError("give the model and the data to compare on")
    data = _load(config.data, config)
    samples, eval_sets = _eval_sets(config, data, eval_files, held_out, eval_format)
    _check_budget(config, samples)
    folder = Path(config.output_dir)
    if overwrite:
        _clear(folder)
    folder.mkdir(parents=True, exist_ok=True)
    keys = _Keys.of(config, samples, eval_sets)
    scores_path, epoch0 = _shared_scores(config, samples, folder, names, keys.scores)
    asked = config.budget
    config = _cap_to_candidates(config, samples, scores_path, say)
    full = _base_rows(config, folder, eval_sets, keys.base)
    summaries: dict[str, ArmSummary] = {}
    for name in names:
        uses = COMPARE_ARMS[name]["strategy"] in ("iterit", "ifd")
        for seed in seed_list:
            cfg = dataclasses.replace(
                config,
                output_dir=str(arm_dir(folder, name, seed)),
                seed=seed,
                scores=str(scores_path) if uses and scores_path else None,
                **COMPARE_ARMS[name],
            )
            summary = _arm(name, cfg, keys, samples, eval_sets, epoch0, say)
            summaries[f"{name}/seed-{seed}"] = summary
            full += summary.rows
    settings = {
        **config.to_json(),
        "budget_asked": asked,
        "arms": names,
        "seeds": seed_list,
        "eval": list(eval_sets),
        "n_train": len(samples),
        "n_eval": {k: len(v) for k, v in eval_sets.items()},
    }
    summary_stats = summarize(full)
    rows = _table(full)
    write_compare_csv(folder / COMPARE_CSV, rows)
    write_compare_json(folder / COMPARE_JSON, rows, summaries, settings, summary_stats)
    return CompareResult(folder, rows, summaries, settings, summary_stats)

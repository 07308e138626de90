"""A tiny randomly initialised Llama and a word-level tokenizer trained in-process: the models
the CPU tests train and score with (no hub download). Seeded, so every build is identical."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch


def tiny_tokenizer(samples, vocab_size: int = 500):
    """A word-level tokenizer trained here on the samples and the Alpaca prompt."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from iterit.data.templates import ALPACA_PROMPT_INPUT, ALPACA_PROMPT_NO_INPUT

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(
        vocab_size=vocab_size, special_tokens=["<unk>", "<pad>", "<s>", "</s>"]
    )
    texts = [ALPACA_PROMPT_INPUT, ALPACA_PROMPT_NO_INPUT]
    for s in samples:
        texts += [s.instruction, s.input, s.response]
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
    )


def tiny_llama_config(vocab_size: int, *, max_positions: int = 512, **overrides):
    """The shape of every tiny Llama the tests and benches build: 2 layers, 32 wide, 4 heads
    over 2 key/value heads; ``overrides`` set the token ids and anything else."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        **overrides,
    )


def tiny_model(tokenizer, seed: int = 0, max_positions: int = 512):
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = tiny_llama_config(
        len(tokenizer),
        max_positions=max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(cfg)


def save_model(folder: Path, model, tokenizer) -> Path:
    """``model`` and ``tokenizer`` saved together as a local model folder (what ``--model``
    and ``load_model`` take)."""
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_scoring_inputs(folder: Path, model, tokenizer, samples) -> Path:
    """The model folder of :func:`save_model` plus ``samples.json`` (``[instruction, response,
    input]`` per sample): what the tests' multi-process scoring scripts read."""
    save_model(folder, model, tokenizer)
    rows = [[s.instruction, s.response, s.input] for s in samples]
    (folder / "samples.json").write_text(json.dumps(rows))
    return folder


def save_tiny_model(folder: Path, tokenizer, seed: int = 0, max_positions: int = 512) -> Path:
    """:func:`tiny_model` saved with its tokenizer as a local model folder."""
    return save_model(folder, tiny_model(tokenizer, seed, max_positions), tokenizer)


def marked_as_gguf(model):
    """What transformers' GGUF loading leaves on a model whose weights it de-quantized."""
    # Releases without a GGUF quantizer (5.0, 4.x) de-quantize while loading: no marks to clear.
    pytest.importorskip("transformers.quantizers.quantizer_gguf")
    from transformers.quantizers.quantizer_gguf import GgufHfQuantizer
    from transformers.utils.quantization_config import GgufConfig, QuantizationMethod

    quantizer = GgufHfQuantizer(GgufConfig(gguf_file="model.gguf"))
    model.hf_quantizer = quantizer
    model.is_quantized = True
    model.quantization_method = QuantizationMethod.GGUF
    model.config.quantization_config = quantizer.quantization_config
    model.config._is_quantized = True
    return model

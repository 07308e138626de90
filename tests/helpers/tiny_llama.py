"""A tiny randomly initialised Llama and a word-level tokenizer trained in-process: the models
the CPU tests train and score with (no hub download). Seeded, so every build is identical."""

from __future__ import annotations

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


def tiny_model(tokenizer, seed: int = 0, max_positions: int = 512):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(cfg)

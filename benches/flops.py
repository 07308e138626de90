"""The forward's FLOP bound of IFD scoring and the dense peak of known devices (for
``bench_ifd.py``'s share of the hardware limit; docs/ifd.md, "Speed on GPUs").

FLOP bound of scoring a set of samples (both passes, each sequence run once, no padding):
``2 * P_body * T + 2 * P_head * S + 2 * n_layers * d_attn * sum(L^2)``, with ``P_body`` the
parameters that every token meets (all but the embedding table and the output head), ``T`` the
tokens of both passes, ``P_head`` the output head's parameters (vocabulary x hidden), ``S``
the scored (response) tokens (only those go through the head), ``d_attn`` the query width
(heads x head size) and ``L`` each sequence's length: causal attention does ``QK^T`` and
``AV`` over ``L(L+1)/2`` query-key pairs, 2 FLOPs per multiply-add each, per layer.
"""

from __future__ import annotations

import re

#: Dense (no structured sparsity) peak TFLOPS per device and dtype, from NVIDIA's datasheets:
#: H100 SXM/H200 "1,979 TFLOPS bf16 with sparsity" (halved), fp32 67; H100 PCIe 1,513/2 and
#: 51; A100 312 and 19.5 (non-tensor fp32); L40S 733/2 and 91.6; L4 242/2 and 30.3; A10 125
#: and 31.2; T4 65 fp16 and 8.1; V100 SXM2 125 fp16 and 15.7 (no bfloat16). float16 runs
#: at the bfloat16 rate on these parts.  fp32 is the CUDA cores' rate (TF32 not assumed).
PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "H200": {"bfloat16": 989.5, "float16": 989.5, "float32": 67.0},
    "H100 PCIe": {"bfloat16": 756.5, "float16": 756.5, "float32": 51.0},
    "H100": {"bfloat16": 989.5, "float16": 989.5, "float32": 67.0},
    "A100": {"bfloat16": 312.0, "float16": 312.0, "float32": 19.5},
    "L40S": {"bfloat16": 366.5, "float16": 366.5, "float32": 91.6},
    "L4": {"bfloat16": 121.0, "float16": 121.0, "float32": 30.3},
    "A10": {"bfloat16": 125.0, "float16": 125.0, "float32": 31.2},
    "T4": {"float16": 65.0, "float32": 8.1},
    "V100": {"float16": 125.0, "float32": 15.7},
}


def device_peak(name: str, dtype: str) -> float | None:
    """The dense peak TFLOPS of the device called ``name`` (``torch.cuda.get_device_name``)
    in ``dtype``, or None for a device or dtype the table does not know (the first key found
    as a whole word in the name wins: ``H100 PCIe`` before ``H100``, ``L40S`` before ``L4``)."""
    for key, peaks in PEAK_TFLOPS.items():
        if re.search(rf"(^|[\s-]){re.escape(key)}($|[\s-])", name):
            return peaks.get(dtype)
    return None


def model_shape(model) -> dict[str, int]:
    """Parameters of the body and of the output head, layers and attention width of a
    transformers causal LM."""
    cfg = model.config
    emb = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    total = sum(p.numel() for p in model.parameters())
    tied = emb.data_ptr() == head.data_ptr()
    body = total - emb.numel() - (0 if tied else head.numel())
    heads = cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    return {
        "body": body,
        "head": head.numel(),
        "layers": cfg.num_hidden_layers,
        "d_attn": heads * head_dim,
    }


def forward_flops(shape: dict[str, int], lengths: list[int], scored: int) -> float:
    """The FLOP bound of running sequences of ``lengths`` (tokens) once each, ``scored`` of
    their tokens through the head (the module docstring's formula)."""
    tokens = sum(lengths)
    attention = 2 * shape["layers"] * shape["d_attn"] * sum(n * (n + 1) for n in lengths)
    return 2.0 * shape["body"] * tokens + 2.0 * shape["head"] * scored + attention

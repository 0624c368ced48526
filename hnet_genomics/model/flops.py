"""Analytic forward FLOPs per input base, counting what each stage really runs on.

A stage-s block runs on L / prod(N_<s) tokens, so its cost per base shrinks with compression; this is what
makes a FLOP-matched comparison against isotropic baselines fair. Counts multiply-adds as 2 FLOPs; norms,
activations and the conv are negligible and left out.
"""

from __future__ import annotations

from hnet_genomics.config import ModelConfig
from hnet_genomics.layout import BlockSpec, parse_layout


def _block_flops_per_token(spec: BlockSpec, s: int, cfg: ModelConfig, tokens: float) -> float:
    d = cfg.d_model[s]
    f = 0.0
    if spec.kind == "m":
        ssm = cfg.ssm
        d_inner = ssm.expand * d
        heads = d_inner // ssm.head_dim
        gn = ssm.ngroups * ssm.d_state
        f += 2 * d * (2 * d_inner + 2 * gn + heads) + 2 * d_inner * d  # in/out projections
        q = min(ssm.chunk_size, max(tokens, 1))
        # SSD: causal intra-chunk scores and mixing (~q/2 partners each) plus state in/out per token
        f += heads * (q * (ssm.d_state + ssm.head_dim) + 4 * ssm.d_state * ssm.head_dim)
    else:
        f += 2 * d * 3 * d + 2 * d * d  # qkv + out
        window = cfg.attn.window_size[s]
        ctx = tokens / 2 if window <= 0 else min(window, tokens / 2)
        f += 4 * ctx * d  # QK^T and AV over the visible context
    if spec.mlp:
        f += 2 * d * 2 * cfg.d_intermediate[s] + 2 * cfg.d_intermediate[s] * d
    return f


def forward_flops_per_base(cfg: ModelConfig, seq_len: int, compression: list[float]) -> float:
    return _flops_per_base(cfg, seq_len, compression, routing_only=False)


def routing_flops_per_base(cfg: ModelConfig, seq_len: int, compression: list[float]) -> float:
    """What segmentation alone costs (``HNetLM.route``: encoders and routers of every chunking stage), the
    floor under any boundary-export speed on given hardware."""
    return _flops_per_base(cfg, seq_len, compression, routing_only=True)


def _flops_per_base(cfg: ModelConfig, seq_len: int, compression: list[float], routing_only: bool) -> float:
    stages = parse_layout(cfg.arch_layout)
    total = 0.0 if routing_only else 2 * cfg.d_model[0] * cfg.vocab_size  # LM head
    density = 1.0  # tokens at this stage per input base
    for s, st in enumerate(stages):
        if routing_only and st.innermost:
            break
        tokens = seq_len * density
        for spec in st.encoder if routing_only else st.all_blocks():
            total += density * _block_flops_per_token(spec, s, cfg, tokens)
        if not st.innermost:
            d = cfg.d_model[s]
            total += density * 2 * 2 * d * d  # routing q/k
            if not routing_only:
                total += density * 2 * d * d  # residual projection
            density /= compression[s]
    return total

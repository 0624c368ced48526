"""Parse the ``arch_layout`` notation of a model config into per-stage block lists (the configuration's grammar;
the model builds its stages from the result).

``"m3t1"`` = three Mamba-2 blocks then one attention block, no MLPs; ``"M2T1"`` = the same with SwiGLU MLPs.
A stage is either ``[enc, [inner...], dec]`` (a chunking level) or ``[body]`` (the innermost, isotropic).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from hnet_genomics.errors import ConfigError

_TOKEN = re.compile(r"([mMtT])(\d+)")


@dataclass(frozen=True)
class BlockSpec:
    kind: str  # "m" (Mamba-2) or "t" (attention)
    mlp: bool


@dataclass
class StageSpec:
    """One hierarchy level. ``body`` is set for the innermost stage, ``encoder``/``decoder`` otherwise."""

    depth: int
    encoder: list[BlockSpec] = field(default_factory=list)
    decoder: list[BlockSpec] = field(default_factory=list)
    body: list[BlockSpec] = field(default_factory=list)
    innermost: bool = False

    def all_blocks(self) -> list[BlockSpec]:
        return self.encoder + self.body + self.decoder


def parse_blocks(code: str) -> list[BlockSpec]:
    """``"m3T1"`` -> [m, m, m, T+mlp]."""
    if not isinstance(code, str):
        raise ConfigError(f"arch_layout: expected a block string like 'm4', got {json.dumps(code)}")
    pos, blocks = 0, []
    for m in _TOKEN.finditer(code):
        if m.start() != pos:
            break
        blocks.extend([BlockSpec(m.group(1).lower(), m.group(1).isupper())] * int(m.group(2)))
        pos = m.end()
    if pos != len(code) or not code:
        raise ConfigError(
            f"arch_layout: cannot parse block string '{code}' (use e.g. 'm4', 'T2', 'm3t1'; "
            "m = Mamba-2, t = attention, upper case adds an MLP)"
        )
    return blocks


def parse_layout(layout: list) -> list[StageSpec]:
    """Nested list -> stages, outermost first. Raises ConfigError for anything malformed."""
    stages: list[StageSpec] = []
    node, depth = layout, 0
    while True:
        if not isinstance(node, list):
            raise ConfigError(f"arch_layout: expected a list at depth {depth}, got {json.dumps(node)}")
        if len(node) == 1:
            body = parse_blocks(node[0])
            if not body:
                raise ConfigError(f"arch_layout: empty innermost network at depth {depth}")
            stages.append(StageSpec(depth=depth, body=body, innermost=True))
            return stages
        if len(node) != 3 or not isinstance(node[1], list):
            raise ConfigError(
                f"arch_layout: depth {depth} must be [encoder, [inner...], decoder] or [body], got {json.dumps(node)}"
            )
        stages.append(StageSpec(depth=depth, encoder=parse_blocks(node[0]), decoder=parse_blocks(node[2])))
        node, depth = node[1], depth + 1

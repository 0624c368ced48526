"""Small shared builders for tests (imported as ``helpers``: pytest puts this folder on sys.path)."""

from __future__ import annotations

from hnet_genomics import load_config

# A 1-stage tiny H-Net that trains a step in well under a second on one CPU thread.
FAST = [
    "train.seq_len=128",
    "train.batch_size=2",
    "train.val_windows=4",
    "train.final_val_windows=4",
    "train.val_every=1000",
    "train.checkpoint_every=1000",
    "train.warmup_steps=2",
    "model.ssm.chunk_size=32",
    "data.rc_prob=0.5",
]


def tiny_config(steps: int, extra=()):
    return load_config("dna/hnet_1stage_tiny", FAST + [f"train.max_steps={steps}", *extra])

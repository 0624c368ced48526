"""Typed configuration: one YAML file holds the model, data and training sections of an experiment.

Configs ship inside the package (``configs/dna/*.yaml``, ``configs/text/*.yaml``) and are loaded by name
(``load_config("dna/hnet_1stage")``) or from a user path. Unknown keys are an error, never ignored, so a
typo cannot silently train the wrong model.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
import types
import typing
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from hnet_genomics.errors import ConfigError
from hnet_genomics.layout import parse_layout


@dataclass
class SSMConfig:
    """Mamba-2 mixer settings, shared by every stage."""

    d_state: int = 64
    expand: int = 2
    d_conv: int = 4
    chunk_size: int = 256
    head_dim: int = 64
    ngroups: int = 1
    dt_min: float = 0.001
    dt_max: float = 0.1


@dataclass
class AttnConfig:
    """Attention settings, one entry per stage (outermost first)."""

    num_heads: list[int] = field(default_factory=lambda: [8])
    rotary_dim: list[int] = field(default_factory=lambda: [32])
    # w > 0: each query sees itself and the w keys before it (flash-attn's window_size=(w, 0), as the reference
    # H-Net passes it); -1 = full causal attention
    window_size: list[int] = field(default_factory=lambda: [-1])


@dataclass
class ModelConfig:
    """The network: ``arch_layout`` nests one list per hierarchy level.

    ``["m3t1", ["m15"], "m4"]`` is a 1-stage H-Net (encoder, main network, decoder); a flat layout such
    as ``["m10"]`` is an isotropic model (the baselines). Lower case blocks have no MLP, upper case blocks
    add a SwiGLU MLP of width ``d_intermediate`` of their stage. Only what rebuilding a saved model needs
    lives here; how it is trained (ratio-loss weight, per-stage learning rates) is in ``TrainConfig``.
    """

    arch_layout: list = field(default_factory=lambda: ["m3t1", ["m15"], "m4"])
    d_model: list[int] = field(default_factory=lambda: [512, 768])
    d_intermediate: list[int] = field(default_factory=lambda: [0, 0])
    vocab_size: int = 256
    ssm: SSMConfig = field(default_factory=SSMConfig)
    attn: AttnConfig = field(
        default_factory=lambda: AttnConfig(num_heads=[8, 12], rotary_dim=[32, 32], window_size=[-1, -1])
    )
    target_compression: list[float] = field(default_factory=lambda: [3.0])  # N per chunking level
    norm_eps: float = 1e-5
    tie_embeddings: bool = False

    @property
    def num_stages(self) -> int:
        """Number of chunking levels (0 for an isotropic model)."""
        return len(self.d_model) - 1

    def validate(self) -> None:
        stages = parse_layout(self.arch_layout)
        n = len(stages)
        for name in ("d_model", "d_intermediate"):
            if len(getattr(self, name)) != n:
                raise ConfigError(
                    f"model.{name} has {len(getattr(self, name))} entries but arch_layout "
                    f"{json.dumps(self.arch_layout)} has {n} stage(s)"
                )
        for name in ("num_heads", "rotary_dim", "window_size"):
            if len(getattr(self.attn, name)) != n:
                raise ConfigError(
                    f"model.attn.{name} has {len(getattr(self.attn, name))} entries but arch_layout has {n} stage(s)"
                )
        if len(self.target_compression) != n - 1:
            raise ConfigError(
                f"model.target_compression needs {n - 1} entr(ies), one per chunking level, "
                f"got {len(self.target_compression)}"
            )
        if any(c <= 1.0 for c in self.target_compression):
            raise ConfigError("model.target_compression values must be > 1 (N = 1 means no chunking)")
        if any(b < a for a, b in zip(self.d_model, self.d_model[1:])):
            raise ConfigError(f"model.d_model must not shrink towards inner stages, got {self.d_model}")
        for s, st in enumerate(stages):
            uses_mlp = any(b.mlp for b in st.all_blocks())
            if uses_mlp and self.d_intermediate[s] <= 0:
                raise ConfigError(
                    f"stage {s} has upper-case blocks (with MLP) but model.d_intermediate[{s}] "
                    f"is {self.d_intermediate[s]}"
                )
            if any(b.kind == "t" for b in st.all_blocks()):
                heads = self.attn.num_heads[s]
                if self.d_model[s] % heads:
                    raise ConfigError(
                        f"model.d_model[{s}]={self.d_model[s]} is not divisible by model.attn.num_heads[{s}]={heads}"
                    )
                head_dim = self.d_model[s] // heads
                if self.attn.rotary_dim[s] % 2 or self.attn.rotary_dim[s] > head_dim:
                    raise ConfigError(f"model.attn.rotary_dim[{s}] must be even and <= head dim {head_dim}")
            if any(b.kind == "m" for b in st.all_blocks()):
                d_inner = self.ssm.expand * self.d_model[s]
                if d_inner % self.ssm.head_dim:
                    raise ConfigError(
                        f"ssm.expand*d_model[{s}]={d_inner} is not divisible by ssm.head_dim={self.ssm.head_dim}"
                    )
        if self.vocab_size < 1:
            raise ConfigError("model.vocab_size must be positive")


@dataclass
class DataConfig:
    """How genomes become windows (see ``hnet_genomics.data``)."""

    kind: Literal["dna", "text"] = "dna"
    soft_mask: Literal["upper", "keep"] = "upper"  # lower-case repeats: upper-case them, or keep the bytes
    emit_soft_mask: bool = False  # add a per-base "soft_mask" (True = lower case in the file) to each item
    n_policy: Literal["keep", "replace", "drop", "mask"] = "mask"
    max_n_fraction: float = 0.1  # windows with more N than this are dropped (n_policy=drop)
    rc_prob: float = 0.5  # reverse-complement augmentation probability (training only)
    valid_chroms: list[str] = field(default_factory=list)
    test_chroms: list[str] = field(default_factory=list)
    valid_fraction: float = 0.05  # for small genomes: fraction of each record held out, deterministic
    test_fraction: float = 0.1
    intervals: str | None = None  # BED with split column (Basenji / Enformer format)

    @property
    def unit(self) -> str:
        """What one input byte is, in every log, metric and report: a DNA "base" or a text "byte"."""
        return "byte" if self.kind == "text" else "base"

    def validate(self) -> None:
        _check_range(
            "data",
            self,
            {
                "max_n_fraction": (0.0, 1.0),
                "rc_prob": (0.0, 1.0),
                "valid_fraction": (0.0, 1.0),
                "test_fraction": (0.0, 1.0),
            },
        )


@dataclass
class TrainConfig:
    """Optimisation and run settings (see ``hnet_genomics.training``)."""

    seq_len: int = 1024
    batch_size: int = 16
    tokens_per_batch: int | None = None  # if set, batch_size = tokens_per_batch // seq_len (Caduceus-style)
    max_steps: int = 1000
    lr: float = 1e-3
    # Stage s (outermost first) trains at lr * lr_multipliers[s]. None = the H-Net paper's rule from the
    # architecture, sqrt(N^s * D^S / D^s) (training/optim.py::default_lr_multipliers); [1.0] for isotropic models.
    lr_multipliers: list[float] | None = None
    ratio_loss_weight: float = 0.03  # alpha of the ratio loss that holds each chunking level near its target N
    weight_decay: float = 0.1  # on matrices only: norms, biases, embeddings, the width pad and A_log/D/dt_bias skip it
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    schedule: Literal["wsd", "cosine", "constant"] = "wsd"
    warmup_steps: int = 100
    decay_fraction: float = 0.2  # WSD: last fraction of steps decays linearly to zero
    min_lr_ratio: float = 0.0
    grad_clip: float = 1.0
    accumulate_grad_batches: int = 1
    precision: Literal["auto", "32-true", "bf16-mixed", "16-mixed"] = "auto"
    strategy: Literal["auto", "ddp", "fsdp", "ddp_spawn"] = "auto"
    devices: int | str = "auto"
    accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    num_nodes: int = 1
    layout: Literal["padded", "packed"] = "padded"
    val_every: int = 200
    val_windows: int = 64  # periodic validation: this many windows spread evenly over the valid split
    final_val_windows: int | None = None  # metrics.json val_bpb: None = every window of the valid split
    checkpoint_every: int = 200
    seed: int = 0
    num_workers: int = 0
    log_every: int = 10
    kernels: Literal["auto", "torch", "gpu"] = "auto"  # GPU kernels when available, or force a path

    def validate(self) -> None:
        """Every number in range, so a typo stops before training instead of looping forever or writing NaN."""
        if self.seq_len < 2:
            raise ConfigError(f"train.seq_len must be at least 2, got {self.seq_len}")
        for name in (
            "batch_size",
            "max_steps",
            "accumulate_grad_batches",
            "num_nodes",
            "val_every",
            "val_windows",
            "checkpoint_every",
            "log_every",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be at least 1, got {getattr(self, name)}")
        for name in ("tokens_per_batch", "final_val_windows"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"train.{name} must be at least 1 (or null), got {value}")
        for name in ("warmup_steps", "num_workers", "seed"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"train.lr must be a positive number, got {self.lr}")
        _check_range(
            "train",
            self,
            {
                "weight_decay": (0.0, math.inf),
                "grad_clip": (0.0, math.inf),
                "decay_fraction": (0.0, 1.0),
                "min_lr_ratio": (0.0, 1.0),
            },
        )
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError(f"train.betas must be two numbers in [0, 1), got {self.betas}")
        if isinstance(self.devices, int) and self.devices < 1 and self.devices != -1:
            raise ConfigError(f"train.devices must be a positive count, -1 (all) or 'auto', got {self.devices}")


@dataclass
class Config:
    """An experiment: model + data + training."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    name: str = "custom"

    def validate(self) -> Config:
        self.model.validate()
        self.data.validate()
        self.train.validate()
        mults = self.train.lr_multipliers
        if mults is not None and len(mults) != len(self.model.d_model):
            raise ConfigError(
                f"train.lr_multipliers has {len(mults)} entries but the model has "
                f"{len(self.model.d_model)} stage(s) (one per d_model entry, outermost first)"
            )
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _check_range(section: str, obj: Any, bounds: dict[str, tuple[float, float]]) -> None:
    """Each named float lies in its closed [low, high] range (NaN never does)."""
    for name, (low, high) in bounds.items():
        value = getattr(obj, name)
        if not low <= value <= high:
            upper = "" if high == math.inf else f" and <= {high:g}"
            raise ConfigError(f"{section}.{name} must be >= {low:g}{upper}, got {value}")


# ---------------------------------------------------------------------------------------------------------
# dict <-> dataclass with strict key checking


_SCIENTIFIC = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if _is_dataclass_type(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return from_dict(tp, value, where)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{where}: {value!r} is not one of {list(typing.get_args(tp))}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is list:
        (inner,) = typing.get_args(tp) or (Any,)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
    if tp is float:
        if isinstance(value, str) and _SCIENTIFIC.fullmatch(value.strip()):
            return float(value)  # YAML 1.1 reads 1e-3 (no dot) as a string; every user means the number
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value  # Any / untyped (arch_layout is validated by the layout parser)


def from_dict(cls: type, data: dict, where: str = "") -> Any:
    """Build dataclass ``cls`` from ``data``; unknown keys raise ConfigError naming the key."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(f"unknown config key '{prefix}{unknown[0]}' (valid keys: {', '.join(sorted(names))})")
    kwargs = {}
    for k, v in data.items():
        kwargs[k] = _coerce(v, hints[k], f"{where}.{k}" if where else k)
    return cls(**kwargs)


def _deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _read_yaml(text: str, origin: str) -> dict:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{origin}{line}: not valid YAML ({getattr(e, 'problem', e)})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: a config must be a mapping with model/data/train sections")
    return data


def available_configs() -> list[str]:
    """Names of the configs shipped with the package, e.g. ``dna/hnet_1stage``."""
    root = resources.files("hnet_genomics") / "configs"
    names = []
    for group in sorted(p.name for p in root.iterdir() if p.is_dir()):
        for f in sorted((root / group).iterdir(), key=lambda p: p.name):
            if f.name.endswith(".yaml"):
                names.append(f"{group}/{f.name[:-5]}")
    return names


# Settings that older versions kept under ``model`` (and so in every saved model) and that now belong to
# ``train``: optimisation choices, not architecture.
TRAINING_KEYS_FORMERLY_IN_MODEL = ("ratio_loss_weight", "lr_multipliers")


def without_training_keys(model: dict) -> tuple[dict, dict]:
    """Split a model section into (architecture keys, the legacy training keys it held)."""
    moved = {k: model[k] for k in TRAINING_KEYS_FORMERLY_IN_MODEL if k in model}
    return {k: v for k, v in model.items() if k not in moved}, moved


def migrate_legacy_keys(data: dict, origin: str = "config") -> dict:
    """Move ``model.ratio_loss_weight`` / ``model.lr_multipliers`` of an older config to ``train``, saying so.

    Applied to each file before ``base`` merging and to each ``--set``, so a legacy key overrides what it
    overrode before; a value the same file also sets under ``train`` wins.
    """
    model = data.get("model")
    if not isinstance(model, dict):
        return data
    arch, moved = without_training_keys(model)
    if not moved:
        return data
    given = data.get("train")
    train = given if isinstance(given, dict) else {}
    data = {**data, "model": arch, "train": {**{k: v for k, v in moved.items() if k not in train}, **train}}
    names = " and ".join(f"model.{k}" for k in moved)
    warnings.warn(
        f"{origin}: {names} belong to the train section now; read as train.{' and train.'.join(moved)}",
        FutureWarning,
        stacklevel=2,
    )
    return data


def _load_raw(name_or_path: str | Path, seen: tuple = ()) -> dict:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml", ".json") or p.exists():
        if not p.exists():
            raise ConfigError(f"config file not found: {p}")
        origin, text = str(p), p.read_text()
    else:
        res = resources.files("hnet_genomics") / "configs" / f"{name_or_path}.yaml"
        if not res.is_file():
            raise ConfigError(
                f"no shipped config named '{name_or_path}' (available: "
                f"{', '.join(available_configs())}) and no such file"
            )
        origin, text = f"hnet_genomics/configs/{name_or_path}.yaml", res.read_text()
    data = migrate_legacy_keys(_read_yaml(text, origin), origin)
    parent = data.pop("base", None)  # a config may extend another one and override a few keys
    if parent is not None:
        if parent in seen:
            raise ConfigError(f"{origin}: circular 'base' chain through {parent}")
        inherited = _load_raw(parent, seen + (parent,))
        inherited.pop("name", None)  # the child is its own experiment
        data = _deep_merge(inherited, data)
    data.setdefault("name", str(name_or_path))
    return data


def parse_override(item: str) -> tuple[list[str], Any]:
    """``train.lr=3e-4`` -> (["train", "lr"], 3e-4); values are parsed as YAML."""
    if "=" not in item:
        raise ConfigError(f"--set expects key=value, got '{item}'")
    key, value = item.split("=", 1)
    keys = key.strip().split(".")
    if len(keys) == 2 and keys[0] == "model" and keys[1] in TRAINING_KEYS_FORMERLY_IN_MODEL:
        warnings.warn(
            f"--set {key.strip()}: a training setting now; read as train.{keys[1]}", FutureWarning, stacklevel=2
        )
        keys = ["train", keys[1]]
    return keys, yaml.safe_load(value)


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    data = copy.deepcopy(data)
    for item in overrides:
        keys, value = parse_override(item)
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item}: '{k}' is not a section")
        node[keys[-1]] = value
    return data


def config_from_dict(data: dict, origin: str = "config") -> Config:
    return from_dict(Config, migrate_legacy_keys(data, origin)).validate()


def load_config(name_or_path: str | Path, overrides: list[str] | None = None) -> Config:
    """Load a shipped config by name (``dna/hnet_1stage``) or a YAML/JSON file, apply ``key=value`` overrides."""
    data = _load_raw(name_or_path)
    if overrides:
        data = apply_overrides(data, overrides)
    return config_from_dict(data, str(name_or_path))


def save_config(config: Config, path: str | Path) -> None:
    from hnet_genomics.atomic import write_text_atomic

    write_text_atomic(path, yaml.safe_dump(config.to_dict(), sort_keys=False))

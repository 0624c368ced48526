"""Checkpoints of the H-Net reference implementation (goombalab/hnet, the paper's released byte-level models) as
models of this package.

The reference's config JSON becomes a ``ModelConfig`` and every tensor of its state dict is renamed, reshaped where
the two layouts differ and shape-checked against the model that config builds; none may be missing or left over.
Where the layouts differ:

- routers: the reference projects the previous position with ``q_proj_layer`` and the current one with
  ``k_proj_layer``, this package the other way round, so the two matrices swap places;
- SwiGLU: the reference's ``fc1`` holds the value half first and the gate second (flash-attn's ``swiglu(gate, y)``),
  ours gates the first half, so the halves swap; its MLP width is rounded up to a multiple of 128;
- Mamba-2: ``conv1d.weight`` (C, 1, K) is ``conv_weight`` (C, K); heads of 64 channels and one group (mamba-ssm's
  defaults, which the reference's config cannot change);
- width pads: the reference keeps the pad into stage s on the stage-s network (``pad_dimension``), we keep it on
  the level that widens into it; stacks are ``layers.i`` / ``rmsnorm`` there, ``blocks.i`` / ``norm`` here;
- tied embeddings: a stored ``lm_head.weight`` must equal the embeddings and is not stored again.

The released models are byte-level text models that read every sequence after a BOS byte (254, the reference's
``ByteTokenizer``); the model folder says so in its encoding.json (``kind: text``, ``bos_token: 254``), where
every read-out already looks for how the model reads its input, so ``generate`` and ``eval --text`` start each
sequence with it and sample any byte, and ``push`` uploads it with the weights.

``.pt`` checkpoints are read weights-only: the omegaconf objects some hold beside their tensors are read as inert
placeholders, never run.
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from hnet_genomics.config import AttnConfig, ModelConfig, SSMConfig
from hnet_genomics.errors import CheckpointError, ConfigError
from hnet_genomics.layout import StageSpec, parse_layout

REFERENCE_KEYS = ("arch_layout", "d_model", "d_intermediate", "vocab_size", "ssm_cfg", "attn_cfg", "tie_embeddings")
SSM_DEFAULTS = {"d_conv": 4, "expand": 2, "d_state": 128, "chunk_size": 256}  # the reference's SSMConfig
ATTN_KEYS = {"num_heads": "num_heads", "rotary_emb_dim": "rotary_dim", "window_size": "window_size"}
MAMBA_HEAD_DIM = 64  # mamba-ssm's Mamba2 default headdim; the reference passes none
MLP_MULTIPLE = 128  # the reference's SwiGLU rounds d_intermediate up to a multiple of this
# The paper's chunking targets for its released models (one stage: ~6 bytes per chunk; two: 3 then 3). Only the
# ratio loss of further training and FLOP estimates read them.
PAPER_TARGETS = {1: [6.0], 2: [3.0, 3.0]}
REFERENCE_BOS = 254  # the reference's ByteTokenizer.bos_idx, put before every sequence in training and generation
WRAPPER_KEYS = ("state_dict", "model", "module", "model_state_dict")
PREFIXES = ("module.", "_orig_mod.", "model.")
# Globals a weights-only load may meet beside the tensors of a reference checkpoint: read as inert placeholders.
INERT_MODULES = ("omegaconf.", "typing.")

Transform = Callable[[torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------------------------------------------------
# config


def _per_stage(value, n: int, where: str, default=None) -> list:
    """A reference setting given once for all stages or as a list with one entry per stage."""
    if value is None:
        return [default] * n
    if not isinstance(value, list):
        return [value] * n
    if len(value) != n:
        raise ConfigError(f"{where} has {len(value)} entries but arch_layout has {n} stage(s)")
    return list(value)


def _ssm(raw, n: int, origin: str) -> SSMConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: ssm_cfg must be a mapping, got {json.dumps(raw)}")
    unknown = sorted(set(raw) - set(SSM_DEFAULTS))
    if unknown:
        raise ConfigError(f"{origin}: unknown key 'ssm_cfg.{unknown[0]}' (the reference's: {', '.join(SSM_DEFAULTS)})")
    values = {}
    for key, default in SSM_DEFAULTS.items():
        per_stage = _per_stage(raw.get(key), n, f"{origin}: ssm_cfg.{key}", default)
        if len(set(per_stage)) != 1:
            raise ConfigError(
                f"{origin}: ssm_cfg.{key} differs between stages ({per_stage}); this package uses one Mamba-2 "
                "setting for every stage"
            )
        values[key] = per_stage[0]
    return SSMConfig(
        d_state=values["d_state"],
        expand=values["expand"],
        d_conv=values["d_conv"],
        chunk_size=values["chunk_size"],
        head_dim=MAMBA_HEAD_DIM,
        ngroups=1,
    )


def _attn(raw, stages: list[StageSpec], origin: str) -> AttnConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: attn_cfg must be a mapping, got {json.dumps(raw)}")
    unknown = sorted(set(raw) - set(ATTN_KEYS))
    if unknown:
        raise ConfigError(f"{origin}: unknown key 'attn_cfg.{unknown[0]}' (the reference's: {', '.join(ATTN_KEYS)})")
    n = len(stages)
    heads = _per_stage(raw.get("num_heads"), n, f"{origin}: attn_cfg.num_heads")
    rotary = _per_stage(raw.get("rotary_emb_dim"), n, f"{origin}: attn_cfg.rotary_emb_dim", 0)
    window = _per_stage(raw.get("window_size"), n, f"{origin}: attn_cfg.window_size", -1)
    for s, stage in enumerate(stages):
        if any(b.kind == "t" for b in stage.all_blocks()) and heads[s] is None:
            raise ConfigError(f"{origin}: stage {s} has attention blocks but attn_cfg.num_heads gives it no count")
        if window[s] == 0:
            raise ConfigError(
                f"{origin}: attn_cfg.window_size[{s}] is 0 (each position sees only itself), which this package "
                "cannot express (its windows are w >= 1 keys back, or -1 for none)"
            )
    return AttnConfig(
        num_heads=[1 if h is None else h for h in heads],
        rotary_dim=rotary,
        window_size=[w if w > 0 else -1 for w in window],
    )


def reference_config(raw: dict, origin: str, target_compression: list[float] | None = None) -> ModelConfig:
    """The ``ModelConfig`` of a reference config JSON (``configs/hnet_2stage_XL.json`` and the like)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: expected a JSON object with the reference's keys ({', '.join(REFERENCE_KEYS)})")
    unknown = sorted(set(raw) - set(REFERENCE_KEYS))
    if unknown:
        raise ConfigError(f"{origin}: unknown key '{unknown[0]}' (the reference's keys: {', '.join(REFERENCE_KEYS)})")
    for key in ("arch_layout", "d_model", "d_intermediate"):
        if key not in raw:
            raise ConfigError(f"{origin}: '{key}' is missing")
    try:
        stages = parse_layout(raw["arch_layout"])
        n = len(stages)
        d_int = _per_stage(raw["d_intermediate"], n, f"{origin}: d_intermediate")
        # the reference's SwiGLU rounds its width up; stages without MLP keep what the file says
        d_int = [
            -(-d // MLP_MULTIPLE) * MLP_MULTIPLE if any(b.mlp for b in st.all_blocks()) and d > 0 else d
            for d, st in zip(d_int, stages)
        ]
        if target_compression is None and n == 1:
            target_compression = []  # an isotropic model chunks nothing
        elif target_compression is None:
            if n - 1 not in PAPER_TARGETS:
                raise ConfigError(
                    f"{origin}: {n - 1} chunking levels; give their target compression (the paper's targets "
                    "cover one and two levels)"
                )
            target_compression = PAPER_TARGETS[n - 1]
        elif len(target_compression) != n - 1:
            raise ConfigError(
                f"{origin}: {n - 1} chunking level(s), but {len(target_compression)} target compression value(s) given"
            )
        cfg = ModelConfig(
            arch_layout=raw["arch_layout"],
            d_model=_per_stage(raw["d_model"], n, f"{origin}: d_model"),
            d_intermediate=d_int,
            vocab_size=raw.get("vocab_size", 256),
            ssm=_ssm(raw.get("ssm_cfg", {}), n, origin),
            attn=_attn(raw.get("attn_cfg", {}), stages, origin),
            target_compression=list(target_compression),
            norm_eps=1e-5,
            tie_embeddings=bool(raw.get("tie_embeddings", False)),
        )
        cfg.validate()
    except ConfigError as e:
        message = str(e)
        raise ConfigError(message if message.startswith(origin) else f"{origin}: {message}") from None
    return cfg


# ---------------------------------------------------------------------------------------------------------
# names


def _swap_halves(t: torch.Tensor) -> torch.Tensor:
    value, gate = t.chunk(2, dim=0)
    return torch.cat([gate, value], dim=0)


def _squeeze_conv(t: torch.Tensor) -> torch.Tensor:
    return t[:, 0, :] if t.dim() == 3 and t.shape[1] == 1 else t


def _same(t: torch.Tensor) -> torch.Tensor:
    return t


def _stack(ours: str, ref: str, specs, table: dict[str, tuple[str, Transform]]) -> None:
    """One encoder, decoder or main network: its blocks and final norm."""
    for i, spec in enumerate(specs):
        o, r = f"{ours}blocks.{i}.", f"{ref}layers.{i}."
        table[r + "norm1.weight"] = (o + "norm1.weight", _same)
        if spec.kind == "m":
            for name in ("in_proj.weight", "dt_bias", "A_log", "D", "out_proj.weight"):
                table[f"{r}mixer.{name}"] = (f"{o}mixer.{name}", _same)
            table[r + "mixer.conv1d.weight"] = (o + "mixer.conv_weight", _squeeze_conv)
            table[r + "mixer.conv1d.bias"] = (o + "mixer.conv_bias", _same)
            table[r + "mixer.norm.weight"] = (o + "mixer.norm_weight", _same)
        else:
            table[r + "mixer.Wqkv.weight"] = (o + "mixer.qkv.weight", _same)
            table[r + "mixer.out_proj.weight"] = (o + "mixer.out_proj.weight", _same)
        if spec.mlp:
            table[r + "norm2.weight"] = (o + "norm2.weight", _same)
            table[r + "mlp.fc1.weight"] = (o + "mlp.fc1.weight", _swap_halves)
            table[r + "mlp.fc2.weight"] = (o + "mlp.fc2.weight", _same)
    table[ref + "rmsnorm.weight"] = (ours + "norm.weight", _same)


def name_table(cfg: ModelConfig) -> dict[str, tuple[str, Transform]]:
    """Reference tensor name -> (our name, how the tensor changes)."""
    table: dict[str, tuple[str, Transform]] = {
        "embeddings.weight": ("embeddings.weight", _same),
        "lm_head.weight": ("lm_head.weight", _same),
    }
    stages = parse_layout(cfg.arch_layout)
    for s, stage in enumerate(stages):
        ours, ref = "backbone." + "main." * s, "backbone." + "main_network." * s
        if s > 0 and cfg.d_model[s] > cfg.d_model[s - 1]:
            table[ref + "pad_dimension"] = ("backbone." + "main." * (s - 1) + "pad", _same)
        if stage.innermost:
            _stack(ours, ref + "main_network.", stage.body, table)
            continue
        _stack(ours + "encoder.", ref + "encoder.", stage.encoder, table)
        _stack(ours + "decoder.", ref + "decoder.", stage.decoder, table)
        table[ref + "routing_module.q_proj_layer.weight"] = (ours + "routing.k_proj.weight", _same)
        table[ref + "routing_module.k_proj_layer.weight"] = (ours + "routing.q_proj.weight", _same)
        table[ref + "residual_proj.weight"] = (ours + "residual_proj.weight", _same)
        table[ref + "residual_proj.bias"] = (ours + "residual_proj.bias", _same)
    return table


def _shape(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def convert_state_dict(
    ref: dict[str, torch.Tensor], cfg: ModelConfig, expected: dict[str, torch.Size], origin: str
) -> dict[str, torch.Tensor]:
    """Every reference tensor under our name, in our layout; ``expected`` holds our model's shapes."""
    ref = dict(ref)
    if cfg.tie_embeddings and "lm_head.weight" in ref:
        head, emb = ref.pop("lm_head.weight"), ref.get("embeddings.weight")
        if emb is None or head.shape != emb.shape or not torch.equal(head, emb):
            raise CheckpointError(f"{origin}: tie_embeddings is set but lm_head.weight differs from embeddings.weight")
    table = name_table(cfg)
    left_over = sorted(k for k in ref if k not in table)
    if left_over:
        raise CheckpointError(
            f"{origin}: {len(left_over)} tensor(s) the config does not account for, e.g. '{left_over[0]}' "
            "(is this the config the checkpoint was trained with?)"
        )
    out = {}
    for ref_name, tensor in ref.items():
        ours, transform = table[ref_name]
        converted = transform(tensor)
        if converted.shape != expected[ours]:
            raise CheckpointError(
                f"{origin}: '{ref_name}' has shape {_shape(tensor.shape)} but the config makes "
                f"{_shape(expected[ours])} (as '{ours}')"
            )
        out[ours] = converted.contiguous()
    missing = sorted(k for k in expected if k not in out and not (cfg.tie_embeddings and k == "lm_head.weight"))
    if missing:
        back = {v[0]: k for k, v in table.items()}
        raise CheckpointError(
            f"{origin}: {len(missing)} tensor(s) the config needs are not in the checkpoint, e.g. "
            f"'{back.get(missing[0], missing[0])}'"
        )
    return out


# ---------------------------------------------------------------------------------------------------------
# reading checkpoints


class _Inert:
    """Stands in for a non-tensor object of a checkpoint: takes whatever state it is given and runs nothing."""

    def __init__(self, *args, **kwargs) -> None:
        self.args = args

    def __setstate__(self, state) -> None:
        self.state = state


def _inert(name: str) -> tuple[type, str]:
    return type(name.rsplit(".", 1)[-1], (_Inert,), {"__module__": name.rsplit(".", 1)[0]}), name


def _torch_load(path: Path):
    """Weights-only, memory-mapped when the file's format allows it (a 1.6 B-parameter checkpoint stays on disk)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as e:
        if "mmap" not in str(e):
            raise
        return torch.load(path, map_location="cpu", weights_only=True)


def _load_pickle(path: Path):
    try:
        return _torch_load(path)
    except pickle.UnpicklingError:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        other = [n for n in names if not n.startswith(INERT_MODULES)]
        if other:
            raise CheckpointError(
                f"{path}: holds objects other than tensors ({', '.join(other[:3])}); only tensors are read "
                "(weights-only), so convert it to a plain state dict or safetensors first"
            ) from None
        with torch.serialization.safe_globals([_inert(n) for n in names]):
            return _torch_load(path)


def _unwrap(obj, path: Path) -> dict[str, torch.Tensor]:
    """The state dict inside what was saved: the dict itself or one of the usual wrappers, minus a DDP/compile
    prefix every name shares."""
    if isinstance(obj, dict) and not all(torch.is_tensor(v) for v in obj.values()):
        inner = [obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), dict)]
        obj = inner[0] if len(inner) == 1 else obj
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{path}: not a state dict (found {type(obj).__name__})")
    odd = [k for k, v in obj.items() if not torch.is_tensor(v)]
    if odd:
        raise CheckpointError(f"{path}: entry '{odd[0]}' is not a tensor; expected a state dict of the reference model")
    state = {str(k): v for k, v in obj.items()}
    for prefix in PREFIXES:
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def read_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a reference checkpoint: a ``.pt`` / ``.bin`` state dict or a ``.safetensors`` file."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return _unwrap(load_file(str(path)), path)
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"{path}: unreadable safetensors file ({e})") from None
    try:
        return _unwrap(_load_pickle(path), path)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        if isinstance(e, CheckpointError):
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({first})") from None


def read_reference_config(path: str | os.PathLike, target_compression: list[float] | None = None) -> ModelConfig:
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file") from None
    return reference_config(raw, str(path), target_compression)


# ---------------------------------------------------------------------------------------------------------
# the whole import


@dataclass
class ImportSummary:
    config: ModelConfig
    tensors: int
    parameters: int
    dtype: str


def import_reference(
    checkpoint: str | os.PathLike,
    config_path: str | os.PathLike,
    out: str | os.PathLike,
    target_compression: list[float] | None = None,
    context: int | None = None,
) -> ImportSummary:
    """Convert a reference checkpoint and its config JSON into a model folder ``from_pretrained`` loads.

    Tensors keep the checkpoint's dtype (the released models are bf16; ``from_pretrained`` loads them into the
    fp32 model). ``context`` records the window length the model was trained on (training.json); encoding.json
    records a text model whose sequences start with byte 254.
    """
    from hnet_genomics.model.lm import HNetLM

    cfg = read_reference_config(config_path, target_compression)
    ref = read_checkpoint(checkpoint)
    with torch.device("meta"):  # names and shapes only: nothing is allocated for the full-size model
        model = HNetLM(cfg)
    expected = {k: v.shape for k, v in model.state_dict().items()}
    converted = convert_state_dict(ref, cfg, expected, str(checkpoint))
    model.load_state_dict(converted, strict=False, assign=True)
    if cfg.tie_embeddings:
        model.lm_head.weight = model.embeddings.weight  # assign=True replaced the tied parameter on one side only
    model.trained_context = context
    model.data_encoding, model.bos_token = {"kind": "text"}, REFERENCE_BOS
    model.save_pretrained(out)
    dtypes = sorted({str(t.dtype).removeprefix("torch.") for t in converted.values()})
    return ImportSummary(cfg, len(converted), sum(t.numel() for t in converted.values()), "/".join(dtypes))

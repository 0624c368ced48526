"""The causal language model over byte values: embeddings -> H-Net (or isotropic) backbone -> LM head."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from hnet_genomics.config import DataConfig, ModelConfig, from_dict, without_training_keys
from hnet_genomics.errors import CheckpointError, ConfigError
from hnet_genomics.layout import parse_layout
from hnet_genomics.model.cache import BlockStates, HNetState
from hnet_genomics.model.flops import forward_flops_per_base, routing_flops_per_base
from hnet_genomics.model.geometry import Geometry
from hnet_genomics.model.hnet import ChunkCapacity, HNet, build_main, continue_main, step_main
from hnet_genomics.model.init import INIT_STD, parameter_stages
from hnet_genomics.model.sampling import sample_next

CONFIG_FILE, WEIGHTS_FILE, TRAINING_FILE = "config.json", "model.safetensors", "training.json"
ENCODING_FILE = "encoding.json"  # how sequence was read in training (the data policies of DataConfig)
MODEL_FILES = (CONFIG_FILE, WEIGHTS_FILE, TRAINING_FILE, ENCODING_FILE)
ENCODING_KEYS = ("kind", "soft_mask", "n_policy")
# encoding.json's one key beside the DataConfig policies: the token every sequence starts with, for models trained
# that way (the reference implementation's byte-level models start each one with byte 254); ours train without.
BOS_KEY = "bos_token"
DNA_ALPHABET = b"ACGT"


@dataclass
class LMOutput:
    logits: torch.Tensor  # (B, L, vocab)
    hidden_states: torch.Tensor  # (B, L, d_model[0]) after the final norm
    boundary_masks: list[torch.Tensor] = field(default_factory=list)  # per chunking level, (B, L_s) bool
    boundary_probs: list[torch.Tensor] = field(default_factory=list)  # per level, (B, L_s) fp32
    level_masks: list[torch.Tensor] = field(default_factory=list)  # validity per level; [0] = input mask
    chunk_hidden: torch.Tensor | None = None  # main-network output on stage-1 chunks
    ratio_loss: torch.Tensor | None = None  # sum over levels (unweighted)
    # per chunking level s, the output of the network that runs on the level's chunks (B, L_{s+1}, d_{s+1});
    # [0] is chunk_hidden. Embeddings of any stage read it.
    stage_hidden: list[torch.Tensor] = field(default_factory=list)

    def level_counts(self) -> torch.Tensor:
        """(levels + 1,) real tokens of the batch at each level, on the device (nothing is read)."""
        return torch.stack([m.sum() for m in self.level_masks])

    def compression_ratios(self) -> list[float]:
        """L_s / L_{s+1} per level, counted over real tokens of the batch (read on the host)."""
        counts = self.level_counts().tolist()
        return [a / max(b, 1) for a, b in zip(counts, counts[1:])]


class HNetLM(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        config.validate()
        self.config = config
        stages = parse_layout(config.arch_layout)
        d0 = config.d_model[0]
        self.embeddings = nn.Embedding(config.vocab_size, d0)
        self.backbone = build_main(config, stages, 0)  # an H-Net level, or the isotropic stack of a baseline
        self.lm_head = nn.Linear(d0, config.vocab_size, bias=False)
        # Window length the weights were trained on (saved as training.json): longer windows put attention
        # and the routers out of distribution, so export and fine-tuning default to it.
        self.trained_context: int | None = None
        # The DataConfig policies the weights were trained with (saved as encoding.json); None for a model
        # saved before that file existed or never trained: inference then reads sequence with the defaults.
        self.data_encoding: dict | None = None
        # The token every training sequence started with (encoding.json's bos_token): generate and text
        # evaluation put it before what they are given. None for this package's models, which train without one.
        self.bos_token: int | None = None
        self._init_weights()
        if config.tie_embeddings:
            self.lm_head.weight = self.embeddings.weight

    @torch.no_grad()
    def _init_weights(self) -> None:
        """As the H-Net reference: every Linear N(0, 0.02), embeddings N(0, 1), and each residual branch's
        output projection shrunk by 1/sqrt(residual layers of its stage's network, outer stages included),
        so the residual stream starts at the same scale whatever the depth; routers, the dechunk skip and
        the Mamba-2 conv / dt / A / D keep their own initialisation (``reset_parameters``)."""
        from hnet_genomics.model.chunking import RoutingModule

        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=INIT_STD)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=1.0)
        self.backbone.scale_residual_outputs(INIT_STD)
        for module in self.modules():  # modules whose own init is part of the method
            if isinstance(module, (RoutingModule, HNet)):
                module.reset_parameters()

    def parameter_stages(self) -> dict[str, int]:
        """Hierarchy stage (0 = outermost) of every parameter, as the modules declared it when built:
        embeddings and LM head at stage 0, each network at its own, the width pad with the stage it widens
        into. Per-stage learning rates are assigned from this."""
        return parameter_stages(self)

    # ---- training / scoring -------------------------------------------------------------------------

    def forward(
        self, input_ids: torch.Tensor, mask: torch.Tensor | None = None, cu_seqlens: torch.Tensor | None = None
    ) -> LMOutput:
        """Padded (B, L) with an optional right-padding ``mask``, or packed (1, T) with ``cu_seqlens`` (best
        left on the host: the packed layout needs its values there, and a host copy is read for free)."""
        if cu_seqlens is not None:
            if input_ids.shape[0] != 1:
                raise ValueError("packed input must have shape (1, T)")
            host, cu = None, cu_seqlens
            if cu_seqlens.device.type == "cpu":
                host = tuple(int(v) for v in cu_seqlens.numpy())
                if input_ids.is_cuda:  # pinned, so that the copy does not wait for the device either
                    cu = cu_seqlens.pin_memory().to(input_ids.device, non_blocking=True)
            else:
                cu = cu_seqlens.to(input_ids.device)
            geom = Geometry.from_cu_seqlens(cu, input_ids.shape[1], host_cu=host)
        else:
            if mask is None:
                mask = torch.ones_like(input_ids, dtype=torch.bool)
            geom = Geometry.padded(mask.bool())
        hidden, levels = self.backbone(self.embeddings(input_ids), geom)
        logits = self.lm_head(hidden)
        ratio = levels[0].ratio_loss if levels else torch.zeros((), device=logits.device)
        for lv in levels[1:]:
            ratio = ratio + lv.ratio_loss
        return LMOutput(
            logits=logits,
            hidden_states=hidden,
            boundary_masks=[lv.boundary for lv in levels],
            boundary_probs=[lv.probs for lv in levels],
            level_masks=[geom.valid] + [lv.inner_valid for lv in levels],
            chunk_hidden=levels[0].chunk_hidden if levels else None,
            ratio_loss=ratio,
            stage_hidden=[lv.chunk_hidden for lv in levels],
        )

    @torch.no_grad()
    def route(self, input_ids: torch.Tensor, mask: torch.Tensor | None = None) -> list:
        """Per chunking level, (boundary, p, valid) without the main network, decoders or LM head.

        Equal to ``forward``'s ``boundary_masks`` / ``boundary_probs`` / ``level_masks`` at a fraction of
        the cost; empty for isotropic models.
        """
        mask = torch.ones_like(input_ids, dtype=torch.bool) if mask is None else mask.bool()
        return self.backbone.route(self.embeddings(input_ids), Geometry.padded(mask))

    def chunk_reruns(self) -> int:
        """Batches so far whose chunks outgrew the room a level planned, so that it ran them again."""
        return sum(m.capacity.reruns for m in self.modules() if isinstance(m, HNet))

    @contextlib.contextmanager
    def exact_chunk_widths(self):
        """Inside, every chunking level reads its chunk counts (a wait each) instead of planning room from
        earlier batches, and what it sees is forgotten after: for measurements that must neither depend on
        nor change what training planned."""
        levels = [m for m in self.modules() if isinstance(m, HNet)]
        saved = [level.capacity for level in levels]
        try:
            for level in levels:
                level.capacity = ChunkCapacity()
                level.capacity.exact = True
            yield
        finally:
            for level, capacity in zip(levels, saved):
                level.capacity = capacity

    # ---- incremental inference ----------------------------------------------------------------------

    def init_state(self, batch: int) -> HNetState | BlockStates:
        p = next(self.parameters())
        return self.backbone.init_state(batch, p.device, p.dtype)

    def step(
        self, input_ids: torch.Tensor, state: HNetState | BlockStates
    ) -> tuple[torch.Tensor, HNetState | BlockStates]:
        """input_ids (B,) -> next-token logits (B, vocab) and the updated state."""
        hidden, state = step_main(self.backbone, self.embeddings(input_ids), state)
        return self.lm_head(hidden), state

    def forward_from(
        self, input_ids: torch.Tensor, state: HNetState | BlockStates, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, HNetState | BlockStates, list[tuple[torch.Tensor, torch.Tensor]]]:
        """Continue sequences whose model state is ``state`` (from ``init_state`` or an earlier call) with the
        right-padded (B, L) ``input_ids``: (logits (B, L, vocab), the state after each row's last real token,
        per chunking level (boundary, p) of the new tokens). Equal to one forward over the whole sequence up
        to float rounding; a prefix run once can be continued by many suffixes (``cache.take_rows``)."""
        valid = torch.ones_like(input_ids, dtype=torch.bool) if mask is None else mask.bool()
        hidden, state, levels = continue_main(self.backbone, self.embeddings(input_ids), valid, state)
        return self.lm_head(hidden), state, levels

    @property
    def reads_text(self) -> bool:
        """Whether the model was trained on text (encoding.json's kind), not DNA: it may write any byte."""
        return self.data_encoding is not None and self.data_encoding.get("kind") == "text"

    @torch.inference_mode()
    def generate(
        self,
        prompt: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        generator: torch.Generator | None = None,
        allowed: bytes | Literal["model"] | None = "model",
    ) -> torch.Tensor:
        """Sample a continuation of ``prompt`` (B, L0) token by token: (B, L0 + max_new_tokens), the prompt first.

        ``allowed`` restricts the alphabet; "model": A/C/G/T for a DNA model, every byte for a text model
        (``reads_text``). A model trained with a BOS token reads it before the prompt (not returned), as in
        training; its prompt may then be empty."""
        if isinstance(allowed, str):  # "model"
            allowed = None if self.reads_text else DNA_ALPHABET
        state = self.init_state(prompt.shape[0])
        if self.bos_token is not None:
            bos = torch.full((prompt.shape[0],), self.bos_token, dtype=prompt.dtype, device=prompt.device)
            logits, state = self.step(bos, state)
        elif prompt.shape[1] == 0:
            raise ValueError("generate needs a prompt of at least one token (the model has no BOS token)")
        for t in range(prompt.shape[1]):  # the prompt is fed through the same recurrent path
            logits, state = self.step(prompt[:, t], state)
        out = [prompt]
        for _ in range(max_new_tokens):
            nxt = sample_next(logits, temperature, top_k, top_p, generator, allowed)
            out.append(nxt[:, None])
            logits, state = self.step(nxt, state)
        return torch.cat(out, dim=1)

    # ---- accounting -----------------------------------------------------------------------------------

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def flops_per_base(self, seq_len: int, compression: list[float] | None = None, training: bool = True) -> float:
        """Matmul FLOPs per input base. Inner stages run on L / prod(N) tokens (``compression`` defaults to the
        configured targets; pass measured ratios for what the model really does). Training = 3x forward."""
        ratios = compression if compression is not None else self.config.target_compression
        f = forward_flops_per_base(self.config, seq_len, list(ratios))
        return 3 * f if training else f

    def routing_flops_per_base(self, seq_len: int, compression: list[float] | None = None) -> float:
        """Matmul FLOPs per input base of ``route`` (encoders and routers only), e.g. for export speed limits."""
        ratios = compression if compression is not None else self.config.target_compression
        return routing_flops_per_base(self.config, seq_len, list(ratios))

    # ---- persistence ----------------------------------------------------------------------------------

    def save_pretrained(
        self, directory: str | os.PathLike, push_to_hub: str | None = None, **push_options
    ) -> str | None:
        """config.json + model.safetensors (+ training.json), built in a temporary folder and swapped in whole.

        An existing folder is replaced only if it holds nothing but these files (OutputError otherwise).
        ``push_to_hub="org/name"`` then uploads the folder with a model card (``publish.push``: ``revision``,
        ``private``, ``commit_message``, ``token``) and returns the commit URL.
        """
        from safetensors.torch import save_file

        from hnet_genomics.atomic import atomic_dir  # the package's one atomic writer (stdlib only)

        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        if self.config.tie_embeddings:
            tensors.pop("lm_head.weight", None)
        with atomic_dir(directory, owned=MODEL_FILES) as tmp:
            (tmp / CONFIG_FILE).write_text(json.dumps(dataclasses.asdict(self.config), indent=2))
            if self.trained_context is not None:
                (tmp / TRAINING_FILE).write_text(json.dumps({"seq_len": self.trained_context}) + "\n")
            encoding = (self.data_encoding or {}) | ({} if self.bos_token is None else {BOS_KEY: self.bos_token})
            if self.data_encoding is not None or encoding:
                (tmp / ENCODING_FILE).write_text(json.dumps(encoding, indent=2) + "\n")
            save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"format": "pt", "library": "hnet_genomics"})
        if push_to_hub is None:
            return None
        from hnet_genomics.model.publish import push

        return push(directory, push_to_hub, **push_options)

    @classmethod
    def from_pretrained(
        cls,
        directory: str | os.PathLike,
        map_location: str = "cpu",
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool | None = None,
    ) -> HNetLM:
        """A saved model folder, or a Hugging Face Hub repo id (``org/name``, ``org/name@revision``) downloaded
        into the Hub cache once (``model/hub.py``: ``revision``, ``cache_dir``, ``local_files_only``, which
        ``HF_HUB_OFFLINE=1`` turns on). A local folder wins over a repo id of the same name."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        from hnet_genomics.model.hub import resolve_model

        directory = check_saved_model(resolve_model(directory, revision, cache_dir, local_files_only))
        cfg_path, w_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
        try:
            saved = json.loads(cfg_path.read_text())
            arch, legacy = without_training_keys(saved) if isinstance(saved, dict) else (saved, {})
            cfg = from_dict(ModelConfig, arch, "model")
        except (json.JSONDecodeError, ConfigError) as e:
            raise CheckpointError(f"{cfg_path}: unreadable model config ({e})") from None
        model = cls(cfg)
        try:
            tensors = load_file(str(w_path), device=map_location)
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"{w_path}: unreadable weights ({e})") from None
        expected = model.state_dict()
        for name, want in expected.items():  # in the model's order: the first mismatch is the most telling
            if name in tensors and tuple(tensors[name].shape) != tuple(want.shape):
                raise CheckpointError(
                    f"{cfg_path}: does not match the weights in {w_path}: tensor '{name}' has shape "
                    f"{list(tensors[name].shape)} there, the config builds {list(want.shape)}"
                )
        missing, unexpected = model.load_state_dict(tensors, strict=False)
        if cfg.tie_embeddings:
            missing = [m for m in missing if m != "lm_head.weight"]
        if missing or unexpected:
            raise CheckpointError(
                f"{w_path}: weights do not match {cfg_path} (missing {missing[:3]}, unexpected {unexpected[:3]})"
            )
        model.trained_context = _read_trained_context(directory / TRAINING_FILE)
        model.data_encoding, model.bos_token = _read_encoding(directory / ENCODING_FILE, cfg.vocab_size)
        if legacy:
            warnings.warn(
                f"{cfg_path}: saved by an older version with training settings "
                f"({', '.join(legacy)}) in the model config; ignored (they belong to train.*)",
                FutureWarning,
                stacklevel=2,
            )
        return model


def check_saved_model(directory: str | os.PathLike) -> Path:
    """``directory`` (a local folder, ``hub.resolve_model``'s answer) holds a saved model (config and weights):
    checked with the other inputs, before a command looks at its outputs."""
    directory = Path(directory)
    if not (directory / CONFIG_FILE).is_file() or not (directory / WEIGHTS_FILE).is_file():
        raise CheckpointError(f"{directory}: not a saved model (expected {CONFIG_FILE} and {WEIGHTS_FILE})")
    return directory


def _read_trained_context(path: Path) -> int | None:
    if not path.is_file():
        return None  # saved before training.json existed, or never trained
    try:
        value = json.loads(path.read_text()).get("seq_len")
    except (json.JSONDecodeError, AttributeError):
        value = None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CheckpointError(f'{path}: expected {{"seq_len": positive integer}}')
    return value


def _read_encoding(path: Path, vocab_size: int) -> tuple[dict | None, int | None]:
    """(the DataConfig policies, the BOS token) saved in encoding.json; None for what it does not say."""
    if not path.is_file():
        return None, None  # saved before encoding.json existed, or never trained
    try:
        saved = json.loads(path.read_text())
        if not isinstance(saved, dict) or set(saved) - {*ENCODING_KEYS, BOS_KEY}:
            raise ConfigError(f"expected an object with keys among {', '.join((*ENCODING_KEYS, BOS_KEY))}")
        bos = saved.pop(BOS_KEY, None)
        if bos is not None and (isinstance(bos, bool) or not isinstance(bos, int) or not 0 <= bos < vocab_size):
            raise ConfigError(f"{BOS_KEY} must be a token id from 0 to {vocab_size - 1}, got {json.dumps(bos)}")
        from_dict(DataConfig, saved, "data")
    except (json.JSONDecodeError, ConfigError) as e:
        raise CheckpointError(f"{path}: unreadable data encoding ({e})") from None
    return (saved if saved or bos is None else None), bos

"""One hierarchy level: encoder -> routing -> downsample -> main network -> EMA dechunk -> residual -> decoder.

The main network is either another ``HNet`` (a deeper level) or the ``Innermost`` stack; both answer
(hidden, levels), so the recursion has no special case.

How many chunks a padded row holds is known only on the device. Reading it before the main network runs
would stall the device in the middle of every forward, so each level sizes its chunk sequence from what it
has seen before (``ChunkCapacity``), queues a copy of the true count to the host, and reads that copy after
the main network and the decoder have been queued: by then the device has usually passed the copy, and if
not the host waits for it alone, while the work queued behind it keeps the device busy. A batch that needed
more room than planned is run again from the chunking on, with exactly the room it needs: no chunk is ever
dropped, and the outputs are those of the exact width (slots beyond a row's count are padding that nothing
real reads, as everything is causal).
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from dataclasses import dataclass

import torch
from torch import nn

from hnet_genomics.config import ModelConfig
from hnet_genomics.devices import HostCopy
from hnet_genomics.layout import StageSpec
from hnet_genomics.model import chunking
from hnet_genomics.model.cache import BlockStates, HNetState, select_rows
from hnet_genomics.model.geometry import Downsampled, Geometry
from hnet_genomics.model.isotropic import BlockStack, Isotropic


@dataclass
class LevelInfo:
    """What one chunking level decided, at that level's own resolution."""

    boundary: torch.Tensor  # (B, L_s) bool
    probs: torch.Tensor  # (B, L_s) fp32
    valid: torch.Tensor  # (B, L_s) bool
    ratio_loss: torch.Tensor
    chunk_hidden: torch.Tensor  # (B, L_{s+1}, d_{s+1}) main-network output on the chunks
    inner_valid: torch.Tensor  # (B, L_{s+1}) bool

    def first_positions(self, keep: int) -> LevelInfo:
        """This level's decisions on its first ``keep`` positions (those of a wider, padded sequence)."""
        cut = slice(None), slice(None, keep)
        return dataclasses.replace(self, boundary=self.boundary[cut], probs=self.probs[cut], valid=self.valid[cut])


class ChunkCapacity:
    """How many chunk slots a padded level gives each row, chosen before this batch's counts are known.

    The widest row of the last ``MEMORY`` batches, as a fraction of the row length, with ``HEADROOM`` on top,
    rounded up to a multiple of ``MULTIPLE`` and capped at the row length. Every slot beyond a row's count is
    main-network work thrown away, so the plan is tight: on real DNA it computes 1.27 slots per chunk held
    against 1.11 for the exact width, and one batch in 200 outgrew it
    (``benchmarks/chunk_capacity.py``). Planning pays only where reading the count stalls the device
    (``PLAN_ON``: CUDA); elsewhere, with nothing seen yet, or with ``exact`` set, the level reads the count
    (the exact width). ``pinned`` fixes the width (tests, or a caller that needs one shape).
    """

    HEADROOM = 1.03
    MULTIPLE = 16  # bf16 tensor-core tiles; fewer distinct shapes than exact widths
    MEMORY = 16
    PLAN_ON: tuple[str, ...] = ("cuda",)  # device types whose reads wait for queued work

    def __init__(self) -> None:
        self.fractions: deque[float] = deque(maxlen=self.MEMORY)
        self.pinned: int | None = None
        self.exact = False
        self.reruns = 0  # batches that needed more room than planned and were run again

    def width(self, length: int, device_type: str = "cuda") -> int | None:
        if self.pinned is not None:
            return max(1, min(self.pinned, length))
        if self.exact or not self.fractions or device_type not in self.PLAN_ON:
            return None
        planned = math.ceil(max(self.fractions) * length * self.HEADROOM / self.MULTIPLE) * self.MULTIPLE
        return max(1, min(planned, length))

    def observe(self, longest: int, length: int) -> None:
        self.fractions.append(longest / max(length, 1))


class Innermost(BlockStack):
    """The innermost network (or a whole isotropic model): a level that chunks nothing, so it answers like
    every ``HNet`` level with (hidden, deeper levels) and routes nothing."""

    def forward(self, hidden: torch.Tensor, geom: Geometry) -> tuple[torch.Tensor, list[LevelInfo]]:
        return self.run(hidden, geom), []

    def route(self, hidden: torch.Tensor, geom: Geometry) -> list:
        return []

    def forward_from(
        self, hidden: torch.Tensor, valid: torch.Tensor, states: BlockStates
    ) -> tuple[torch.Tensor, BlockStates, list]:
        out, states = self.run_from(hidden, valid, states)
        return out, states, []


def build_main(cfg: ModelConfig, stages: list[StageSpec], s: int) -> HNet | Innermost:
    return Innermost(stages[s].body, s, cfg) if stages[s].innermost else HNet(cfg, stages, s)


def step_main(
    net: HNet | Innermost, hidden: torch.Tensor, state: HNetState | BlockStates
) -> tuple[torch.Tensor, HNetState | BlockStates]:
    """One token through a level or the innermost stack, with the state its own ``init_state`` made."""
    if isinstance(net, HNet):
        assert isinstance(state, HNetState)  # an HNet level's init_state makes an HNetState
        return net.step(hidden, state)
    assert isinstance(state, list)  # the innermost stack's init_state makes one state per block
    return net.step(hidden, state)


def continue_main(
    net: HNet | Innermost, hidden: torch.Tensor, valid: torch.Tensor, state: HNetState | BlockStates
) -> tuple[torch.Tensor, HNetState | BlockStates, list[tuple[torch.Tensor, torch.Tensor]]]:
    """A chunk of tokens through a level or the innermost stack, continuing ``state``: (output, state after
    each row's last real token, (boundary, p) of this level and the deeper ones)."""
    if isinstance(net, HNet):
        assert isinstance(state, HNetState)  # an HNet level's init_state makes an HNetState
        return net.forward_from(hidden, valid, state)
    assert isinstance(state, list)  # the innermost stack's init_state makes one state per block
    return net.forward_from(hidden, valid, state)


class HNet(nn.Module):
    inner_stage_parameters = ("pad",)  # the width pad feeds stage s + 1 and trains with it

    def __init__(self, cfg: ModelConfig, stages: list[StageSpec], s: int):
        super().__init__()
        self.stage = s
        self.d, d_next = cfg.d_model[s], cfg.d_model[s + 1]  # this level's width and the main network's
        self.target = cfg.target_compression[s]
        self.encoder = Isotropic(stages[s].encoder, s, cfg)
        self.routing = chunking.RoutingModule(self.d)
        self.main = build_main(cfg, stages, s + 1)
        self.decoder = Isotropic(stages[s].decoder, s, cfg)
        self.residual_proj = nn.Linear(self.d, self.d)  # zero-initialised: the skip starts silent
        self.pad = nn.Parameter(torch.zeros(d_next - self.d)) if d_next > self.d else None
        self.capacity = ChunkCapacity()
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Zero skip weight (the decoder starts from the dechunked main-network output); the bias keeps
        nn.Linear's own U(-1/sqrt(d), 1/sqrt(d)), as in the reference."""
        nn.init.zeros_(self.residual_proj.weight)
        bound = 1 / math.sqrt(self.d)
        nn.init.uniform_(self.residual_proj.bias, -bound, bound)

    def scale_residual_outputs(self, std: float, outer_layers: int = 0) -> None:
        """Encoder and decoder count their residual layers together with those outside them; the main
        network adds its own to that count."""
        layers = outer_layers + self.encoder.residual_layers + self.decoder.residual_layers
        self.encoder.init_residual_outputs(std, layers)
        self.decoder.init_residual_outputs(std, layers)
        self.main.scale_residual_outputs(std, layers)

    def upsampled_plus_skip(
        self, smoothed: torch.Tensor, p: torch.Tensor, boundary: torch.Tensor, enc: torch.Tensor
    ) -> torch.Tensor:
        """The decoder's input: the dechunked main-network output times the straight-through confidence of
        its chunk (value 1, gradient into p), plus the linear skip from the encoder."""
        conf = chunking.confidence_ste(p, boundary)[..., None]
        skip = self.residual_proj(enc.float()).float()
        return (smoothed.float() * conf + skip).to(enc.dtype)

    def encode(self, hidden: torch.Tensor, geom: Geometry) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(encoder output, boundary probability, boundary) at this level's resolution."""
        enc = self.encoder(hidden, geom)
        p, boundary = self.routing(enc, geom)
        return enc, p, boundary

    def chunk(self, enc: torch.Tensor, chunks: Downsampled) -> torch.Tensor:
        """The main network's input: the encoder states at chunk starts, widened to the inner width."""
        return chunking.pad_width(chunking.gather_positions(enc, chunks.index), self.pad)

    def main_and_decode(
        self, enc: torch.Tensor, p: torch.Tensor, boundary: torch.Tensor, chunks: Downsampled, geom: Geometry
    ) -> tuple[torch.Tensor, torch.Tensor, list[LevelInfo]]:
        inner_out, deeper = self.main(self.chunk(enc, chunks), chunks.geom)
        p_inner = torch.gather(p, 1, chunks.index)
        smoothed = chunking.dechunk(inner_out[..., : self.d], p_inner, chunks.chunk_of)
        return self.decoder(self.upsampled_plus_skip(smoothed, p, boundary, enc), geom), inner_out, deeper

    def forward(self, hidden: torch.Tensor, geom: Geometry) -> tuple[torch.Tensor, list[LevelInfo]]:
        enc, p, boundary = self.encode(hidden, geom)
        length = boundary.shape[1]
        width = None if geom.packed else self.capacity.width(length, boundary.device.type)
        chunks = geom.downsample(boundary, width)
        longest = HostCopy(chunks.longest) if width is not None else None
        out, inner_out, deeper = self.main_and_decode(enc, p, boundary, chunks, geom)
        inner_valid = chunks.geom.valid
        if longest is not None:
            assert width is not None  # a planned width is what makes the count worth copying
            need = int(longest.item())  # queued right after routing, read only now
            self.capacity.observe(need, length)
            if need > width:  # this batch has more chunks than planned: run it again with room for all
                self.capacity.reruns += 1
                chunks = geom.downsample(boundary, need)
                out, inner_out, deeper = self.main_and_decode(enc, p, boundary, chunks, geom)
            keep = max(need, 1)  # what the exact width would have been: the outputs' shapes do not change
            inner_out, inner_valid = inner_out[:, :keep], chunks.geom.valid[:, :keep]
            deeper = [deeper[0].first_positions(keep)] + deeper[1:] if deeper else deeper
        elif not geom.packed:  # the exact width was read: remember it
            self.capacity.observe(chunks.index.shape[1], length)
        info = LevelInfo(
            boundary=boundary,
            probs=p,
            valid=geom.valid,
            ratio_loss=chunking.ratio_loss(boundary, p, geom.valid, self.target),
            chunk_hidden=inner_out,
            inner_valid=inner_valid,
        )
        return out, [info] + deeper

    def route(self, hidden: torch.Tensor, geom: Geometry) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """(boundary, p, valid) for this level and the deeper ones, running only encoders and routers.

        Boundaries depend on nothing downstream of their router, so segmentation (track export) skips the
        innermost network, the decoders and the LM head. The chunk sequence takes its exact width here.
        """
        enc, p, boundary = self.encode(hidden, geom)
        chunks = geom.downsample(boundary)
        return [(boundary, p, geom.valid)] + self.main.route(self.chunk(enc, chunks), chunks.geom)

    # ---- incremental inference ------------------------------------------------------------------------

    def forward_from(
        self, hidden: torch.Tensor, valid: torch.Tensor, state: HNetState
    ) -> tuple[torch.Tensor, HNetState, list[tuple[torch.Tensor, torch.Tensor]]]:
        """``forward`` over right-padded rows that continue ``state`` (a chunked continuation, not token steps):
        the router compares the first token with the last key seen, new chunk starts continue the main
        network's state, the EMA continues from the last chunk's smoothed output (positions before the first
        new boundary belong to that chunk), and encoder and decoder continue their own states."""
        enc, enc_state = self.encoder.run_from(hidden, valid, state.encoder)
        p, boundary, key = self.routing.forward_from(enc, valid, state.prev_key)
        chunks = Geometry.padded(valid).downsample(boundary)  # exact width: inference reads its counts anyway
        inner_out, main_state, deeper = continue_main(self.main, self.chunk(enc, chunks), chunks.geom.valid, state.main)
        smoothed, last = chunking.dechunk_from(
            inner_out[..., : self.d], torch.gather(p, 1, chunks.index), boundary, state.smoothed
        )
        out = self.upsampled_plus_skip(smoothed, p, boundary, enc)
        dec, dec_state = self.decoder.run_from(out, valid, state.decoder)
        new = HNetState(encoder=enc_state, main=main_state, decoder=dec_state, prev_key=key, smoothed=last)
        return dec, new, [(boundary, p)] + deeper

    def init_state(self, batch: int, device, dtype) -> HNetState:
        return HNetState(
            encoder=self.encoder.init_state(batch, device, dtype),
            main=self.main.init_state(batch, device, dtype),
            decoder=self.decoder.init_state(batch, device, dtype),
            prev_key=None,
            smoothed=torch.zeros(batch, self.d, device=device, dtype=torch.float32),
        )

    def step(self, hidden: torch.Tensor, state: HNetState) -> tuple[torch.Tensor, HNetState]:
        """One token for every row. Rows whose token opens a chunk advance the main network; others reuse
        their current chunk's smoothed output, exactly as the plug-back does in the full forward."""
        enc, enc_state = self.encoder.step(hidden, state.encoder)
        p, key = self.routing.step(enc, state.prev_key)
        boundary = p >= 0.5
        smoothed, main_state = state.smoothed, state.main
        if bool(boundary.any()):
            inner_out, new_main = step_main(self.main, chunking.pad_width(enc, self.pad), main_state)
            z = inner_out[..., : self.d].float()
            new_smoothed = p[:, None] * z + (1 - p[:, None]) * smoothed
            smoothed = torch.where(boundary[:, None], new_smoothed, smoothed)
            main_state = select_rows(boundary, new_main, main_state)
        out = self.upsampled_plus_skip(smoothed.to(enc.dtype), p, boundary, enc)
        dec, dec_state = self.decoder.step(out, state.decoder)
        return dec, HNetState(encoder=enc_state, main=main_state, decoder=dec_state, prev_key=key, smoothed=smoothed)

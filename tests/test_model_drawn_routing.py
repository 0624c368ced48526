"""Boundaries drawn at the target rate: the whole H-Net path runs at the compression training reaches."""

import pytest
import torch
from conftest import small_model_config

from hnet_genomics import build_model
from hnet_genomics.model.drawn_routing import drawn_boundaries


@pytest.mark.parametrize("scale", [1.0, 0.8])
def test_every_level_chunks_at_its_target_and_the_router_still_learns(hnet_config, dna_batch, scale):
    torch.manual_seed(0)
    model = build_model(hnet_config)
    ids = dna_batch(8, 1024)
    with drawn_boundaries(model, scale=scale, seed=3):
        out = model(ids)
    for ratio, target in zip(out.compression_ratios(), hnet_config.target_compression):
        assert ratio == pytest.approx(scale * target, rel=0.08)
    assert all(bool(b[:, 0].all()) for b in out.boundary_masks)  # every sequence start opens a chunk
    out.ratio_loss.backward()  # p is the router's own, with its gradient
    for name, p in model.named_parameters():
        if "routing" in name:
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_draws_repeat_with_the_seed_and_the_hooks_go_with_the_block(dna_batch):
    torch.manual_seed(0)
    model = build_model(small_model_config("dna/hnet_1stage_tiny"))
    ids = dna_batch(2, 512)
    with torch.no_grad():
        fresh = model(ids).boundary_masks[0]
        with drawn_boundaries(model, seed=7):
            first = model(ids).boundary_masks[0]
        with drawn_boundaries(model, seed=7):
            again = model(ids).boundary_masks[0]
        after = model(ids).boundary_masks[0]
    assert torch.equal(first, again) and not torch.equal(first, fresh)
    assert torch.equal(after, fresh)


def test_packed_rows_open_a_chunk_at_every_sequence_start(dna_batch):
    torch.manual_seed(0)
    model = build_model(small_model_config("dna/hnet_1stage_tiny"))
    ids = dna_batch(1, 900)
    cu = torch.tensor([0, 100, 400, 900], dtype=torch.int32)
    with torch.no_grad(), drawn_boundaries(model):
        out = model(ids, cu_seqlens=cu)
    assert bool(out.boundary_masks[0][0, cu[:-1].long()].all())
    assert out.compression_ratios()[0] == pytest.approx(3.0, rel=0.2)

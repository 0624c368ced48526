"""Behaviour of the full model: causality, step == forward, packed == padded, gradients, ratio loss."""

import pytest
import torch
from conftest import small_model_config

from hnet_genomics.model.chunking import ratio_loss
from hnet_genomics.model.lm import HNetLM


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hnet_is_causal_across_chunk_boundaries_padded(hnet_config, dna_batch, seed):
    torch.manual_seed(seed)
    model = HNetLM(hnet_config).eval()
    for m in model.modules():  # skip weights start at zero: a base that opens no chunk would reach no logit
        if hasattr(m, "residual_proj"):
            torch.nn.init.normal_(m.residual_proj.weight, std=0.02)
    x = dna_batch(2, 96, seed)
    with torch.no_grad():
        base = model(x).logits
        g = torch.Generator().manual_seed(100 + seed)
        for j in torch.randint(1, 96, (12,), generator=g).tolist():
            x2 = x.clone()
            x2[:, j] = torch.where(x2[:, j] == ord("A"), ord("T"), ord("A"))  # a real substitution
            out = model(x2).logits
            torch.testing.assert_close(out[:, :j], base[:, :j], rtol=0, atol=1e-5)
            assert (out[:, j:] - base[:, j:]).abs().max() > 0  # the change is seen downstream


@pytest.mark.parametrize("seed", [0, 1])
def test_hnet_is_causal_packed(hnet_config, dna_batch, seed):
    torch.manual_seed(seed)
    model = HNetLM(hnet_config).eval()
    lengths = [40, 17, 55]
    x = dna_batch(1, sum(lengths), seed)
    cu = torch.tensor([0, 40, 57, 112], dtype=torch.int32)
    with torch.no_grad():
        base = model(x, cu_seqlens=cu).logits
        for j in [5, 39, 41, 56, 80, 111]:
            x2 = x.clone()
            x2[0, j] = ord("G") if x2[0, j] != ord("G") else ord("C")
            out = model(x2, cu_seqlens=cu).logits
            torch.testing.assert_close(out[:, :j], base[:, :j], rtol=0, atol=1e-5)


def test_packed_sequences_do_not_see_each_other(hnet_config, dna_batch):
    torch.manual_seed(0)
    model = HNetLM(hnet_config).eval()
    x = dna_batch(1, 90, 3)
    cu = torch.tensor([0, 30, 90], dtype=torch.int32)
    with torch.no_grad():
        packed = model(x, cu_seqlens=cu).logits
        alone = model(x[:, 30:]).logits
    torch.testing.assert_close(packed[:, 30:], alone, rtol=1e-4, atol=1e-5)


def test_packed_equals_padded_outputs_and_gradients(hnet_config, dna_batch):
    torch.manual_seed(0)
    model = HNetLM(hnet_config)
    lengths = [64, 23, 47]
    rows = [dna_batch(1, n, 10 + i)[0] for i, n in enumerate(lengths)]
    padded = torch.zeros(3, 64, dtype=torch.long)
    mask = torch.zeros(3, 64, dtype=torch.bool)
    for i, r in enumerate(rows):
        padded[i, : len(r)], mask[i, : len(r)] = r, True
    packed = torch.cat(rows)[None]
    cu = torch.tensor([0, 64, 87, 134], dtype=torch.int32)

    def loss_and_grads(out, valid):
        loss = (out.logits.float().square().mean(-1) * valid).sum() + out.ratio_loss
        model.zero_grad()
        loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    out_pad = model(padded, mask=mask)
    out_pack = model(packed, cu_seqlens=cu)
    torch.testing.assert_close(out_pack.logits[0], out_pad.logits[mask], rtol=1e-4, atol=1e-5)
    for a, b in zip(out_pad.boundary_masks[:1], out_pack.boundary_masks[:1]):
        assert torch.equal(a[mask], b[0])
    # ratio loss is computed over the same real tokens in both layouts
    torch.testing.assert_close(out_pack.ratio_loss, out_pad.ratio_loss)
    g_pad = loss_and_grads(model(padded, mask=mask), mask)
    g_pack = loss_and_grads(model(packed, cu_seqlens=cu), torch.ones_like(packed, dtype=torch.bool))
    assert g_pad.keys() == g_pack.keys()
    for name in g_pad:
        torch.testing.assert_close(g_pack[name], g_pad[name], rtol=1e-3, atol=1e-5, msg=name)


@pytest.mark.parametrize(
    "name", ["dna/hnet_1stage_tiny", "dna/hnet_2stage_tiny", "dna/mamba2_tiny", "dna/transformer_tiny"]
)
def test_step_by_step_logits_equal_full_forward(name, dna_batch):
    """Tolerance: 1e-4 absolute on logits in fp32 (chunked scan vs recurrence round differently)."""
    torch.manual_seed(0)
    model = HNetLM(small_model_config(name)).eval()
    x = dna_batch(3, 80, 7)
    with torch.no_grad():
        full = model(x).logits
        state = model.init_state(3)
        steps = []
        for t in range(x.shape[1]):
            logits, state = model.step(x[:, t], state)
            steps.append(logits)
    torch.testing.assert_close(torch.stack(steps, 1), full, rtol=0, atol=1e-4)


def test_generate_samples_dna_reproducibly(dna_batch):
    torch.manual_seed(0)
    model = HNetLM(small_model_config("dna/hnet_1stage_tiny")).eval()
    prompt = dna_batch(2, 16, 1)
    a = model.generate(prompt, 20, temperature=1.0, top_k=3, generator=torch.Generator().manual_seed(5))
    b = model.generate(prompt, 20, temperature=1.0, top_k=3, generator=torch.Generator().manual_seed(5))
    assert a.shape == (2, 36) and torch.equal(a, b) and torch.equal(a[:, :16], prompt)
    assert set(a[:, 16:].flatten().tolist()) <= set(b"ACGT")
    greedy = model.generate(prompt, 5, temperature=0)
    with torch.no_grad():
        first = model(prompt).logits[:, -1, list(b"ACGT")].argmax(-1)
    assert torch.equal(greedy[:, 16], torch.tensor(list(b"ACGT"))[first])


def test_gradients_reach_routing_projections(hnet_config, dna_batch):
    torch.manual_seed(0)
    model = HNetLM(hnet_config)
    x = dna_batch(2, 64, 2)
    out = model(x)
    loss = torch.nn.functional.cross_entropy(out.logits[:, :-1].reshape(-1, 256), x[:, 1:].reshape(-1))
    (loss + 0.03 * out.ratio_loss).backward()
    routers = [m for n, m in model.named_modules() if n.endswith("routing")]
    assert len(routers) == len(hnet_config.target_compression)
    for r in routers:
        assert r.q_proj.weight.grad.abs().sum() > 0 and r.k_proj.weight.grad.abs().sum() > 0


def test_lm_loss_alone_trains_routing_through_confidence(dna_batch):
    """The STE confidence is the path by which the next-base loss (not only the ratio loss) shapes routing."""
    torch.manual_seed(0)
    model = HNetLM(small_model_config("dna/hnet_1stage_tiny"))
    with torch.no_grad():  # the residual starts at zero; open it so the decoder depends on the chunks
        model.backbone.residual_proj.weight.normal_(std=0.02)
    x = dna_batch(2, 64, 4)
    out = model(x)
    torch.nn.functional.cross_entropy(out.logits[:, :-1].reshape(-1, 256), x[:, 1:].reshape(-1)).backward()
    assert model.backbone.routing.q_proj.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("n", [2.0, 3.0, 6.0])
def test_ratio_loss_is_one_at_target_and_larger_elsewhere(n):
    length = 600
    valid = torch.ones(1, length, dtype=torch.bool)
    k = int(length / n)
    at_target = torch.zeros(1, length, dtype=torch.bool)
    at_target[0, :k] = True
    p_target = torch.full((1, length), 1 / n)
    assert ratio_loss(at_target, p_target, valid, n).item() == pytest.approx(1.0, abs=1e-5)
    for frac in [0.05, 0.2, 0.5, 0.9]:
        if abs(frac - 1 / n) < 1e-3:
            continue
        b = torch.zeros(1, length, dtype=torch.bool)
        b[0, : int(frac * length)] = True
        assert ratio_loss(b, torch.full((1, length), frac), valid, n).item() > 1.0


def test_routing_starts_as_identity_and_first_base_is_a_boundary(hnet_config, dna_batch):
    model = HNetLM(hnet_config)
    r = model.backbone.routing
    assert torch.equal(r.q_proj.weight, torch.eye(r.q_proj.weight.shape[0]))
    assert torch.equal(model.backbone.residual_proj.weight, torch.zeros_like(model.backbone.residual_proj.weight))
    out = model(dna_batch(2, 40, 0))
    for level in out.boundary_masks:
        assert level[:, 0].all()
    assert out.level_masks[1].sum(1).tolist() == out.boundary_masks[0].sum(1).tolist()


@pytest.mark.parametrize("room", ["whole row", "too little"])
def test_planned_chunk_room_gives_the_outputs_and_gradients_of_the_exact_width(hnet_config, dna_batch, room):
    """A level plans its chunk sequence's width before it knows the counts: more room than the longest row
    (padding no real output reads), or too little (the batch runs again with exactly enough), changes no
    output, no shape and no gradient."""
    from hnet_genomics.model.hnet import HNet

    torch.manual_seed(0)
    model = HNetLM(hnet_config)
    ids = dna_batch(3, 96, 2)
    mask = torch.ones_like(ids, dtype=torch.bool)
    mask[2, 61:] = False
    levels = [m for m in model.modules() if isinstance(m, HNet)]

    def run():
        out = model(ids, mask=mask)
        loss = (out.logits.float().square().mean(-1) * mask).sum() + out.ratio_loss
        model.zero_grad()
        loss.backward()
        return out, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    with model.exact_chunk_widths():
        exact, exact_grads = run()
    for level in levels:
        level.capacity.pinned = 96 if room == "whole row" else 2
    planned, planned_grads = run()
    assert all(level.capacity.reruns == (room == "too little") for level in levels)
    torch.testing.assert_close(planned.logits[mask], exact.logits[mask], rtol=1e-5, atol=1e-6)
    for a, b in zip(planned.level_masks + planned.boundary_masks, exact.level_masks + exact.boundary_masks):
        assert torch.equal(a, b)
    for a, b, valid in zip(planned.stage_hidden, exact.stage_hidden, exact.level_masks[1:]):
        torch.testing.assert_close(a[valid], b[valid], rtol=1e-5, atol=1e-6)
    assert planned_grads.keys() == exact_grads.keys()
    for name in exact_grads:
        torch.testing.assert_close(planned_grads[name], exact_grads[name], rtol=1e-4, atol=1e-6, msg=name)


def test_chunk_room_is_planned_only_where_reading_the_count_would_stall_the_device():
    """Planned room is main-network work thrown away; a CPU reads the count for free, so it takes the exact
    width. On CUDA the plan is the widest row seen, with a little headroom, in multiples of 16."""
    from hnet_genomics.model.hnet import ChunkCapacity

    capacity = ChunkCapacity()
    assert capacity.width(1024, "cuda") is None  # nothing seen yet: read the count once
    capacity.observe(300, 1024)
    capacity.observe(341, 1024)
    assert capacity.width(1024, "cpu") is None
    planned = capacity.width(1024, "cuda")
    assert planned is not None and planned % 16 == 0 and 341 <= planned <= 1.05 * 341 + 16
    capacity.pinned = 40
    assert capacity.width(1024, "cpu") == 40  # a pinned width holds everywhere (tests, fixed shapes)

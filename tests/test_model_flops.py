"""The FLOP counter behind FLOP-matched comparisons, and the shipped baselines sized with it."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from hnet_genomics import build_model, load_config

MATCHED = [
    ("dna/hnet_1stage_tiny", "dna/mamba2_tiny_flops"),
    ("dna/hnet_1stage_tiny", "dna/transformer_tiny_flops"),
    ("dna/hnet_1stage", "dna/mamba2_flops"),
    ("dna/hnet_1stage", "dna/transformer_flops"),
]


def flops_at_target(name: str) -> float:
    cfg = load_config(name)
    return build_model(cfg).flops_per_base(cfg.train.seq_len, list(cfg.model.target_compression) or None)


@pytest.mark.parametrize("hnet,baseline", MATCHED)
def test_flop_matched_baselines_cost_what_the_hnet_costs_at_its_target_compression(hnet, baseline):
    assert flops_at_target(baseline) == pytest.approx(flops_at_target(hnet), rel=0.05)


@pytest.mark.parametrize(
    "hnet,baseline",
    [
        ("dna/hnet_1stage_tiny", "dna/mamba2_tiny"),
        ("dna/hnet_1stage_tiny", "dna/transformer_tiny"),
        ("dna/hnet_1stage", "dna/mamba2"),
        ("dna/hnet_1stage", "dna/transformer"),
    ],
)
def test_parameter_matched_baselines_have_the_hnets_parameter_count(hnet, baseline):
    params = [build_model(load_config(n)).num_parameters() for n in (hnet, baseline)]
    assert params[1] == pytest.approx(params[0], rel=0.15)


def test_hnet_flops_fall_with_compression_because_inner_stages_run_on_fewer_tokens():
    model = build_model(load_config("dna/hnet_1stage_tiny"))
    costs = [model.flops_per_base(1024, [n]) for n in (1.0, 2.0, 3.0, 6.0)]
    assert costs == sorted(costs, reverse=True) and costs[0] > 1.8 * costs[-1]


@pytest.mark.parametrize("name", ["dna/mamba2_tiny", "dna/mamba2_tiny_flops"])
def test_analytic_count_agrees_with_torchs_operator_count(name):
    """Mamba-2 has no SDPA (which torch's counter skips on CPU), so every matmul is visible to it."""
    torch.manual_seed(0)
    model = build_model(load_config(name)).eval()
    x = torch.tensor([65, 67, 71, 84])[torch.randint(0, 4, (2, 1024))]
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    measured = counter.get_total_flops() / x.numel()
    assert model.flops_per_base(1024, None, training=False) == pytest.approx(measured, rel=0.10)


def test_routing_count_is_a_close_lower_bound_of_torchs_operator_count_on_an_all_mamba_hnet():
    """``route`` runs the stage-1 and stage-2 encoders and routers. The count takes SSD mixing as causal (half of
    each chunk), torch's counter sees the full masked chunk products, so the count must sit just under it: the
    export benchmark divides by it for a speed ceiling, which must not be too low."""
    torch.manual_seed(0)
    model = build_model(load_config("dna/hnet_2stage_tiny")).eval()
    x = torch.tensor([65, 67, 71, 84])[torch.randint(0, 4, (1, 2048))]
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        levels = model.route(x)
    ratio = x.shape[1] / levels[0][0].sum().item()
    expected = model.routing_flops_per_base(x.shape[1], [ratio, 1.0])
    measured = counter.get_total_flops() / x.numel()
    assert 0.85 * measured <= expected <= measured
    assert expected < 0.6 * model.flops_per_base(x.shape[1], [ratio, 1.0], training=False)

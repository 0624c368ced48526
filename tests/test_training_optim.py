"""Parameter groups and schedules: per-stage LR multipliers, decay exclusions, WSD/cosine shapes."""

import pytest

from hnet_genomics import build_model, load_config
from hnet_genomics.training.optim import lr_factor, param_groups, parameter_stage


def test_parameter_stage_follows_main_nesting():
    assert parameter_stage("embeddings.weight") == 0
    assert parameter_stage("backbone.encoder.blocks.0.mixer.in_proj.weight") == 0
    assert parameter_stage("backbone.main.blocks.3.mixer.A_log") == 1
    assert parameter_stage("backbone.main.main.blocks.0.norm1.weight") == 2
    assert parameter_stage("backbone.main.routing.q_proj.weight") == 1


@pytest.mark.parametrize("name", ["dna/hnet_2stage_tiny", "dna/mamba2_tiny"])
def test_groups_scale_lr_per_stage_and_skip_decay_on_norms_biases_embeddings(name):
    cfg = load_config(name)
    model = build_model(cfg)
    groups = param_groups(model, cfg.model, cfg.train)
    seen = set()
    for g in groups:
        assert g["lr"] == pytest.approx(cfg.train.lr * cfg.model.lr_multipliers[g["stage"]])
        for n, p in zip(g["names"], g["params"]):
            seen.add(n)
            no_decay = p.ndim < 2 or n == "embeddings.weight" or n.endswith(("A_log", "dt_bias", ".D"))
            assert (g["weight_decay"] == 0.0) == no_decay, n
    assert seen == {n for n, _ in model.named_parameters()}
    assert {g["stage"] for g in groups} == set(range(len(cfg.model.d_model)))


def test_wsd_schedule_warms_up_holds_then_decays_to_floor():
    cfg = load_config("dna/hnet_1stage_tiny").train
    cfg.max_steps, cfg.warmup_steps, cfg.decay_fraction, cfg.min_lr_ratio = 100, 10, 0.2, 0.0
    f = [lr_factor(s, cfg) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(v == 1.0 for v in f[10:80])
    assert all(a > b for a, b in zip(f[80:], f[81:])) and f[99] < 0.06


def test_cosine_schedule_is_monotone_after_warmup():
    cfg = load_config("dna/hnet_1stage_tiny").train
    cfg.schedule, cfg.max_steps, cfg.warmup_steps, cfg.min_lr_ratio = "cosine", 50, 5, 0.1
    f = [lr_factor(s, cfg) for s in range(5, 51)]
    assert all(a >= b for a, b in zip(f, f[1:])) and f[-1] == pytest.approx(0.1)

"""Parameter groups and schedules: per-stage LR multipliers (the paper's rule), stages declared by the modules,
decay exclusions, WSD/cosine shapes."""

import math

import pytest

from hnet_genomics import build_model, load_config
from hnet_genomics.config import available_configs
from hnet_genomics.errors import ConfigError
from hnet_genomics.training.optim import default_lr_multipliers, lr_factor, lr_multipliers, param_groups

# sqrt(N^s * D^S / D^s): N^s = product of target compressions from stage s inwards, D^S the innermost width
PAPER_RULE = {
    "dna/hnet_1stage": [math.sqrt(3 * 768 / 512), 1.0],  # 2.12
    "dna/hnet_1stage_tiny": [math.sqrt(3 * 96 / 64), 1.0],
    "dna/hnet_2stage": [math.sqrt(6 * 1024 / 512), math.sqrt(2 * 1024 / 768), 1.0],
    "dna/hnet_2stage_tiny": [math.sqrt(6 * 96 / 48), math.sqrt(2 * 96 / 64), 1.0],
    "text/hnet_1stage_bytes": [math.sqrt(6 * 1536 / 1024), 1.0],  # 3.0
    "text/hnet_2stage_bytes": [math.sqrt(9 * 1536 / 1024), math.sqrt(3 * 1536 / 1024), 1.0],
}


@pytest.mark.parametrize("name", available_configs())
def test_every_shipped_config_trains_with_the_paper_rule_multipliers(name):
    cfg = load_config(name)
    assert cfg.train.lr_multipliers is None  # nothing hand-picked: the rule decides
    expected = PAPER_RULE.get(name, [1.0])  # isotropic baselines: one stage at the base LR
    assert lr_multipliers(cfg.model, cfg.train) == pytest.approx(expected)
    assert default_lr_multipliers(cfg.model) == pytest.approx(expected)


def test_multipliers_set_in_the_training_config_win_and_must_match_the_stages():
    cfg = load_config("dna/hnet_1stage_tiny", ["train.lr_multipliers=[1.5, 1.0]"])
    assert lr_multipliers(cfg.model, cfg.train) == [1.5, 1.0]
    with pytest.raises(ConfigError, match="train.lr_multipliers has 3 entries"):
        load_config("dna/hnet_1stage_tiny", ["train.lr_multipliers=[3, 2, 1]"])


def test_parameter_stages_are_declared_by_the_modules_and_the_pad_trains_with_the_inner_stage():
    model = build_model(load_config("dna/hnet_2stage_tiny"))
    stages = model.parameter_stages()
    assert set(stages) >= {n for n, _ in model.named_parameters()}
    expect = {
        "embeddings.weight": 0,
        "lm_head.weight": 0,
        "backbone.encoder.blocks.0.mixer.in_proj.weight": 0,
        "backbone.routing.q_proj.weight": 0,
        "backbone.residual_proj.bias": 0,
        "backbone.decoder.norm.weight": 0,
        "backbone.pad": 1,
        "backbone.main.routing.k_proj.weight": 1,
        "backbone.main.encoder.blocks.1.mixer.A_log": 1,
        "backbone.main.residual_proj.weight": 1,
        "backbone.main.pad": 2,
        "backbone.main.main.blocks.2.mixer.out_proj.weight": 2,
    }
    assert {n: stages[n] for n in expect} == expect


@pytest.mark.parametrize("name", ["dna/hnet_1stage_tiny", "dna/hnet_2stage_tiny"])
def test_width_pad_sits_in_the_inner_stage_group_at_its_learning_rate(name):
    cfg = load_config(name)
    model = build_model(cfg)
    mults = lr_multipliers(cfg.model, cfg.train)
    pads = {n for n, _ in model.named_parameters() if n.endswith("pad")}
    assert pads
    for g in param_groups(model, cfg.model, cfg.train):
        for n in set(g["names"]) & pads:
            inner = n.count("main.") + 1
            assert g["stage"] == inner and g["lr"] == pytest.approx(cfg.train.lr * mults[inner])
            assert g["weight_decay"] == 0.0


@pytest.mark.parametrize("name", ["dna/hnet_2stage_tiny", "dna/mamba2_tiny"])
def test_groups_scale_lr_per_stage_and_skip_decay_on_norms_biases_embeddings(name):
    cfg = load_config(name)
    model = build_model(cfg)
    groups = param_groups(model, cfg.model, cfg.train)
    mults = lr_multipliers(cfg.model, cfg.train)
    seen = set()
    for g in groups:
        assert g["lr"] == pytest.approx(cfg.train.lr * mults[g["stage"]])
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

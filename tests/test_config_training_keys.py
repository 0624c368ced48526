"""Training settings live in the training config: the model config (and so every saved model) holds only the
architecture, while older YAML files, --set overrides and saved models that carry them under ``model`` still
load, with a warning that names the key."""

import json
import warnings

import pytest
import torch

from hnet_genomics import build_model, from_pretrained, load_config
from hnet_genomics.config import ModelConfig

LEGACY = """base: dna/hnet_1stage_tiny
model:
  ratio_loss_weight: 0.05
  lr_multipliers: [1.5, 1.0]
"""


def test_model_config_has_no_training_settings():
    names = set(ModelConfig.__dataclass_fields__)
    assert not names & {"ratio_loss_weight", "lr_multipliers"}
    cfg = load_config("dna/hnet_1stage_tiny")
    assert cfg.train.ratio_loss_weight == 0.03 and cfg.train.lr_multipliers is None


def test_legacy_yaml_keys_move_to_train_with_a_warning_and_override_the_base(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text(LEGACY)
    with pytest.warns(FutureWarning, match=r"old.yaml: model.ratio_loss_weight and model.lr_multipliers"):
        cfg = load_config(path)
    assert cfg.train.ratio_loss_weight == 0.05 and cfg.train.lr_multipliers == [1.5, 1.0]


def test_legacy_set_override_is_read_as_a_training_setting():
    with pytest.warns(FutureWarning, match="--set model.ratio_loss_weight"):
        cfg = load_config("dna/hnet_1stage_tiny", ["model.ratio_loss_weight=0.1"])
    assert cfg.train.ratio_loss_weight == 0.1


def test_saved_model_holds_only_architecture_and_older_saved_models_still_load(tmp_path):
    model = build_model(load_config("dna/hnet_1stage_tiny"))
    model.save_pretrained(tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert "lr_multipliers" not in saved and "ratio_loss_weight" not in saved
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a current model loads silently
        from_pretrained(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text(
        json.dumps(saved | {"ratio_loss_weight": 0.03, "lr_multipliers": [1.5, 1.0]})
    )
    with pytest.warns(FutureWarning, match="config.json: saved by an older version"):
        old = from_pretrained(tmp_path / "m")
    ids = torch.tensor([list(b"ACGTTGCAACGGTTAC")])
    torch.testing.assert_close(old(ids).logits, model(ids).logits, rtol=0, atol=0)


@pytest.mark.parametrize(
    "flops,partner",
    [
        ("mamba2_flops", "mamba2"),
        ("transformer_flops", "transformer"),
        ("mamba2_tiny_flops", "mamba2_tiny"),
        ("transformer_tiny_flops", "transformer_tiny"),
    ],
)
def test_flop_matched_configs_extend_their_parameter_matched_partner(flops, partner):
    """``base:`` inheritance: the FLOP-matched baselines change only the architecture, and keep their own name."""
    child, parent = load_config(f"dna/{flops}"), load_config(f"dna/{partner}")
    assert child.name == f"dna/{flops}" and parent.name == f"dna/{partner}"
    assert child.train == parent.train and child.data == parent.data and child.model.ssm == parent.model.ssm
    assert child.model.arch_layout != parent.model.arch_layout

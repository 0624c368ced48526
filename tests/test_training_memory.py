"""The up-front memory estimate: saved activations measured on the path that runs, linear in the windows."""

import warnings

import pytest
import torch
from conftest import small_model_config

from hnet_genomics import build_model
from hnet_genomics.training import pretrain
from hnet_genomics.training.resources import measure_training_memory, saved_activation_bytes


@pytest.mark.parametrize(
    "name", ["dna/hnet_1stage_tiny", "dna/hnet_2stage_tiny", "dna/mamba2_tiny", "dna/transformer_tiny"]
)
def test_two_short_measurements_predict_a_batch_of_four_longer_windows(name):
    torch.manual_seed(0)
    model = build_model(small_model_config(name))
    estimate = measure_training_memory(model, 1024)
    assert estimate.per_window > 0 and estimate.params == model.num_parameters()
    ids = torch.tensor(list(b"ACGT"))[torch.randint(0, 4, (4, 1024), generator=torch.Generator().manual_seed(1))]
    measured = saved_activation_bytes(model, ids)
    predicted = estimate.fixed + 4 * estimate.per_window
    assert measured == pytest.approx(predicted, rel=0.1)  # chunk counts differ a little between batches


def test_bf16_autocast_keeps_less_than_fp32():
    torch.manual_seed(0)
    model = build_model(small_model_config("dna/hnet_1stage_tiny"))
    fp32 = measure_training_memory(model, 256, "fp32")
    bf16 = measure_training_memory(model, 256, "bf16")
    assert bf16.per_window < 0.9 * fp32.per_window


def test_a_step_that_does_not_fit_is_flagged_with_the_windows_that_would(monkeypatch):
    from hnet_genomics import load_config

    config = load_config("dna/hnet_1stage_tiny", ["train.batch_size=64", "train.seq_len=256"])
    model = build_model(config)
    estimate = measure_training_memory(model, 256)
    budget = estimate.step_bytes(10)  # free memory for ~8 windows at the 80 % threshold
    monkeypatch.setattr(pretrain, "available_bytes", lambda on_gpu: budget)
    with pytest.warns(
        UserWarning,
        match=r"training may run out of memory: a step of 64 x 256 bases .* about \d windows "
        r"fit: lower train.tokens_per_batch",
    ):
        pretrain.warn_if_memory_tight(config, model, on_gpu=False)
    monkeypatch.setattr(pretrain, "available_bytes", lambda on_gpu: 10 * estimate.step_bytes(64))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pretrain.warn_if_memory_tight(config, model, on_gpu=False)

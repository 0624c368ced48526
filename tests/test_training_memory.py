"""The up-front memory estimate: saved activations measured on the path that runs, linear in the windows, at
the compression training reaches; the micro-batch it lets a run train."""

import pytest
import torch
from conftest import small_model_config

from hnet_genomics import build_model
from hnet_genomics.errors import ConfigError
from hnet_genomics.model.drawn_routing import drawn_boundaries
from hnet_genomics.training.resources import (
    MEASURED_COMPRESSION_SCALE,
    MemoryEstimate,
    measure_training_memory,
    plan_micro_batch,
    saved_activation_bytes,
)


@pytest.mark.parametrize(
    "name", ["dna/hnet_1stage_tiny", "dna/hnet_2stage_tiny", "dna/mamba2_tiny", "dna/transformer_tiny"]
)
def test_two_short_measurements_predict_a_batch_of_four_longer_windows(name):
    torch.manual_seed(0)
    model = build_model(small_model_config(name))
    estimate = measure_training_memory(model, 1024)
    assert estimate.per_window > 0 and estimate.params == model.num_parameters()
    ids = torch.tensor(list(b"ACGT"))[torch.randint(0, 4, (4, 1024), generator=torch.Generator().manual_seed(1))]
    with drawn_boundaries(model, MEASURED_COMPRESSION_SCALE, seed=1):  # the compression the estimate assumes
        measured = saved_activation_bytes(model, ids)
    predicted = estimate.fixed + 4 * estimate.per_window
    assert measured == pytest.approx(predicted, rel=0.1)  # chunk counts differ a little between batches


def test_bf16_autocast_keeps_less_than_fp32():
    torch.manual_seed(0)
    model = build_model(small_model_config("dna/hnet_1stage_tiny"))
    fp32 = measure_training_memory(model, 256, "fp32")
    bf16 = measure_training_memory(model, 256, "bf16")
    assert bf16.per_window < 0.9 * fp32.per_window


def test_the_estimate_follows_the_compression_the_main_network_sees():
    """Measured at a compression below the target, an H-Net keeps more (its main network gets more chunks);
    an isotropic model has no router and keeps the same."""
    torch.manual_seed(0)
    hnet = build_model(small_model_config("dna/hnet_1stage_tiny"))
    at_target = measure_training_memory(hnet, 512, compression_scale=1.0)
    below = measure_training_memory(hnet, 512, compression_scale=0.5)
    assert below.per_window > 1.1 * at_target.per_window
    iso = build_model(small_model_config("dna/mamba2_tiny"))
    assert measure_training_memory(iso, 512, compression_scale=0.5) == measure_training_memory(iso, 512)


def _estimate(per_window: int, params: int = 1000, fixed: int = 0) -> MemoryEstimate:
    return MemoryEstimate(per_window=per_window, fixed=fixed, params=params)


def test_a_micro_batch_that_fits_is_kept():
    estimate = _estimate(per_window=10**6)
    assert plan_micro_batch(estimate, estimate.step_bytes(64), 64, 4) == (64, 4)


@pytest.mark.parametrize(
    ("micro", "accumulate", "fits", "expected"),
    [
        (64, 4, 40, (32, 8)),  # the largest divisor of the 256 windows of a step that fits
        (64, 4, 63, (32, 8)),
        (64, 1, 20, (16, 4)),
        (12, 1, 5, (4, 3)),
        (7, 1, 3, (1, 7)),  # a prime number of windows: one at a time
        (6, 2, 1, (1, 12)),
    ],
)
def test_a_micro_batch_that_does_not_fit_shrinks_and_the_optimizer_step_keeps_its_windows(
    micro, accumulate, fits, expected
):
    estimate = _estimate(per_window=3 * 2**20, fixed=12345)
    budget = estimate.step_bytes(fits) + estimate.per_window // 2  # room for `fits` windows and a half
    assert estimate.windows_that_fit(budget) == fits
    new_micro, new_accumulate = plan_micro_batch(estimate, budget, micro, accumulate)
    assert (new_micro, new_accumulate) == expected
    assert new_micro <= fits and new_micro * new_accumulate == micro * accumulate


def test_not_even_one_window_fitting_is_a_one_line_error():
    estimate = _estimate(per_window=2**30, params=10**6)
    with pytest.raises(ConfigError, match=r"does not fit even with one window per micro-batch.*train.seq_len") as e:
        plan_micro_batch(estimate, estimate.step_bytes(1) - 1, 8, 1)
    assert "\n" not in str(e.value)

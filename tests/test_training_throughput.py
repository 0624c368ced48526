"""bases/s with and without the warm-up steps, on a clock the test drives (no timing of real work)."""

from types import SimpleNamespace

import pytest
import torch

from hnet_genomics.training import throughput
from hnet_genomics.training.throughput import Throughput


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def run(monkeypatch, steps: int, accumulate: int, seconds_per_batch: list[float], validate_after: dict[int, float]):
    """Drive the hooks as Lightning does: ``accumulate`` micro-batches of 1,000 bases per optimizer step;
    ``seconds_per_batch[i]`` is the i-th micro-batch's time, ``validate_after[step]`` a validation's."""
    clock = Clock()
    monkeypatch.setattr(throughput.time, "perf_counter", clock)
    trainer = SimpleNamespace(global_step=0, sanity_checking=False)
    module = SimpleNamespace(bases_seen=0, device=torch.device("cpu"))
    meter = Throughput(warmup_steps=2)
    batch = 0
    for _ in range(steps):
        for _ in range(accumulate):
            meter.on_train_batch_start(trainer, module, None, batch)
            clock.now += seconds_per_batch[batch]
            module.bases_seen += 1000
            if (batch + 1) % accumulate == 0:
                trainer.global_step += 1
            meter.on_train_batch_end(trainer, module, None, None, batch)
            batch += 1
        if trainer.global_step in validate_after:
            meter.on_validation_start(trainer, module)
            clock.now += validate_after[trainer.global_step]
            meter.on_validation_end(trainer, module)
    meter.on_train_end(trainer, module)
    return meter.summary()


def test_the_steady_state_leaves_out_the_warmup_steps_and_validation(monkeypatch):
    # a 300 s compile in the first micro-batch, then 0.5 s per micro-batch; validations of 50 s after steps 1 and 6
    times = [300.5] + [0.5] * 23
    out = run(monkeypatch, steps=6, accumulate=4, seconds_per_batch=times, validate_after={1: 50.0, 6: 50.0})
    assert out["warmup_steps"] == 2 and out["warmup_seconds"] == pytest.approx(300.5 + 7 * 0.5)
    assert out["bases_per_second"] == pytest.approx(16 * 1000 / (16 * 0.5))  # steps 3 to 6
    assert out["bases_per_second_with_warmup"] == pytest.approx(24 * 1000 / (300.5 + 23 * 0.5))


def test_a_run_that_ends_within_the_warmup_has_no_steady_state(monkeypatch):
    out = run(monkeypatch, steps=2, accumulate=1, seconds_per_batch=[3.0, 1.0], validate_after={})
    assert out["bases_per_second"] is None and out["warmup_seconds"] == pytest.approx(4.0)
    assert out["bases_per_second_with_warmup"] == pytest.approx(2000 / 4.0)


def test_a_resumed_run_warms_up_from_its_own_first_step(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(throughput.time, "perf_counter", clock)
    trainer = SimpleNamespace(global_step=10, sanity_checking=False)  # resumed at step 10
    module = SimpleNamespace(bases_seen=50_000, device=torch.device("cpu"))
    meter = Throughput(warmup_steps=2)
    for seconds in (5.0, 1.0, 1.0, 1.0):
        meter.on_train_batch_start(trainer, module, None, 0)
        clock.now += seconds
        module.bases_seen += 1000
        trainer.global_step += 1
        meter.on_train_batch_end(trainer, module, None, None, 0)
    meter.on_train_end(trainer, module)
    out = meter.summary()
    assert out["warmup_seconds"] == pytest.approx(6.0) and out["bases_per_second"] == pytest.approx(1000.0)

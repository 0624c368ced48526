"""Shared fixtures: real DNA from the embedded demo region, tiny model configs."""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    # Our Triton kernels can only run under the interpreter here, and the switch is read when a kernel is
    # decorated: set it before any test imports Lightning, which imports triton on the way.
    os.environ.setdefault("TRITON_INTERPRET", "1")

from hnet_genomics import load_config


@pytest.fixture(scope="session")
def human_bases() -> bytes:
    """The first 64 kb of the embedded human HLA region (real sequence, upper case)."""
    from hnet_genomics.data import demo
    from hnet_genomics.data.genome import Genome

    g = Genome(demo.HUMAN_FASTA)
    chrom = next(iter(g.sizes))
    return g.fetch(chrom, 0, 65536).upper()


@pytest.fixture
def dna_batch(human_bases):
    """Return ``make(batch, length, seed)`` -> LongTensor of real DNA windows at random offsets."""

    def make(batch: int, length: int, seed: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        starts = torch.randint(0, len(human_bases) - length, (batch,), generator=g).tolist()
        return torch.tensor([list(human_bases[s : s + length]) for s in starts], dtype=torch.long)

    return make


def small_model_config(name: str):
    """A shipped tiny config shrunk further so that exhaustive property tests stay fast."""
    cfg = load_config(name).model
    cfg.ssm.chunk_size = 16  # several SSD chunks even on short test sequences
    return cfg


@pytest.fixture(params=["dna/hnet_1stage_tiny", "dna/hnet_2stage_tiny"])
def hnet_config(request):
    return small_model_config(request.param)


@pytest.fixture(autouse=True, scope="session")
def _one_intra_op_thread():
    """Test tensors are small: one thread avoids oversubscribing the cores that the subprocess-based tests
    (CLI, DDP, Snakemake) use at the same time, and is faster for them than two."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


REQUIRE_ENV = "HNET_TEST_REQUIRE"  # comma list of what must be present (cuda, triton, mamba-ssm, ...) or "all"


def required(what: str) -> bool:
    names = {n.strip().lower() for n in os.environ.get(REQUIRE_ENV, "").split(",") if n.strip()}
    return "all" in names or what.lower() in names


def missing(what: str, why: str):
    """Skip a test whose package or device is absent, or fail it when HNET_TEST_REQUIRE names it: a GPU run
    (or CI) that was meant to exercise the kernels must not go green by skipping all of them."""
    if required(what):
        pytest.fail(f"{what} is required ({REQUIRE_ENV}={os.environ[REQUIRE_ENV]}) but {why}", pytrace=False)
    pytest.skip(f"{what}: {why}", allow_module_level=True)


def pytest_runtest_setup(item):
    if item.get_closest_marker("gpu") is not None and not torch.cuda.is_available():
        missing("cuda", "torch sees no CUDA device")

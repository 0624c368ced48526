"""A training step never makes the host wait for the device (padded layout), or once per chunking level
(packed): counted with ``kernels.trace.DeviceWork``, a dispatch mode that records every op whose result the
host must read (``.item()``, ``nonzero``, boolean-mask indexing, ``.tolist()``, ...).

On the CPU the step runs two ways: the torch path, and the GPU path's control flow, where ``dispatch`` hands
the CPU tensors to the GPU providers (mamba-ssm's and our Triton kernels, under Triton's interpreter) and
the Triton launches are counted without running them (``execute=False``). Their outputs are then
uninitialised, so the routers' decisions are drawn at the target compression (``drawn_boundaries``), the one
value the control flow depends on. What those kernels compute is checked against the references in
test_kernels_interpreted.py and test_kernels_gpu.py; here only what the host waits for is.
"""

import contextlib
import functools
import importlib.util
import os

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from conftest import missing, small_model_config
from helpers import tiny_config

from hnet_genomics.kernels import trace
from hnet_genomics.model.drawn_routing import drawn_boundaries
from hnet_genomics.model.hnet import ChunkCapacity, HNet
from hnet_genomics.model.lm import HNetLM

EMULATED = "GPU kernels, emulated"


@pytest.fixture(autouse=True)
def plan_chunk_room_on_cpu(monkeypatch):
    """Padded levels plan their chunk room only where a read stalls the device (CUDA); these tests count the
    reads of the GPU's control flow on CPU tensors, so the CPU plans here as a GPU would."""
    monkeypatch.setattr(ChunkCapacity, "PLAN_ON", ("cuda", "cpu"))


@contextlib.contextmanager
def kernel_path(name: str, model: HNetLM):
    """The torch path as it is, or the GPU providers on CPU tensors with routing drawn at N = 3."""
    if name != EMULATED:
        yield {}
        return
    if torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") != "1":
        pytest.skip("a GPU machine runs the real kernels (test_padded_training_step_on_a_gpu_...)")
    for package, dist in (("triton", "triton"), ("mamba_ssm", "mamba-ssm")):
        if importlib.util.find_spec(package) is None:
            missing(dist, "is not installed (.ci/run builds mamba-ssm without its CUDA extension)")
    with trace.gpu_kernels_on_cpu(execute=False) as chosen, drawn_boundaries(model, quiet=trace.paused):
        yield chosen


def levels(model: HNetLM) -> list[HNet]:
    return [m for m in model.modules() if isinstance(m, HNet)]


def train_step(model, optimizer, ids, **inputs):
    out = model(ids, **inputs)
    loss = F.cross_entropy(out.logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten()) + 0.03 * out.ratio_loss
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=True)
    optimizer.step()


def padded_batch(dna_batch):
    ids = dna_batch(3, 96, 4)
    mask = torch.ones_like(ids, dtype=torch.bool)
    mask[1, 70:] = False  # a shorter row: padding inside the batch
    return ids, mask


def test_the_counter_sees_every_way_of_reading_the_device():
    x = torch.arange(8.0)
    reads = {
        "item": lambda: x.sum().item(),
        "int": lambda: int(x.max()),
        "bool": lambda: bool((x > 3).any()),
        "nonzero": lambda: torch.nonzero(x > 3),
        "masked_select": lambda: x[x > 3],
        "mask assignment": lambda: x.clone().index_put_((x > 3,), torch.tensor(0.0)),
        "unique": lambda: torch.unique(x),
        "repeat_interleave": lambda: torch.repeat_interleave(torch.arange(1, 4)),
        "tolist": lambda: x.tolist(),
        "cpu": lambda: x.cpu(),
        "equal": lambda: torch.equal(x, x),
    }
    for what, read in reads.items():
        with trace.DeviceWork() as work:
            read()
        assert work.total_syncs == 1, what
    quiet = {
        "arithmetic": lambda: (x * 2 + 1).cumsum(0),
        "scatter": lambda: torch.zeros(9).scatter_(0, torch.tensor([1, 2]), torch.ones(2)),
        "sized repeat_interleave": lambda: torch.repeat_interleave(torch.arange(1, 4), output_size=6),
        "host memory": lambda: x.numpy().sum(),
        "host data": lambda: (torch.tensor([1.0, 2.0]) * 2).sum().item(),  # never left the host
    }
    for what, work_fn in quiet.items():
        with trace.DeviceWork() as work:
            work_fn()
        assert work.total_syncs == 0, (what, work.sync_sites)


def test_launch_model_counts_views_as_free_and_multi_tensor_ops_by_chunks():
    x = torch.randn(4, 6)
    with trace.DeviceWork() as work:
        x.view(6, 4).t()[1:].unsqueeze(0)
        x.reshape(24).split(12)  # reshape of a contiguous tensor is a view
        torch.empty(3)
    assert work.total_launches == 0
    with trace.DeviceWork() as work:
        y = x + 1
        y.mul_(2)
    assert work.launches == {"elementwise": 2}
    small = [torch.zeros(10) for _ in range(100)]
    assert trace.multi_tensor_launches([small]) == 1  # 100 tensors of depth 1 fit one launch (110)
    assert trace.multi_tensor_launches([small] * 4) == 3  # depth 4: 36 tensors per launch
    big = [torch.zeros(320 * 65536 + 1)]
    assert trace.multi_tensor_launches([big]) == 2  # 321 chunks: one launch holds 320 blocks
    with trace.DeviceWork() as work:
        torch._foreach_mul_(small, 2.0)
    assert work.launches == {"optimizer (multi-tensor)": 1}


@pytest.mark.parametrize("path", ["torch", EMULATED])
def test_padded_training_step_never_waits_for_the_device(path, dna_batch):
    """Forward, backward, gradient clipping and a fused AdamW step of the tiny H-Net: after a first step
    (which reads its chunk counts once, having seen none before), nothing is read until the next log."""
    torch.manual_seed(0)
    model = HNetLM(small_model_config("dna/hnet_1stage_tiny"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    ids, mask = padded_batch(dna_batch)
    with kernel_path(path, model) as chosen:
        train_step(model, optimizer, ids, mask=mask)
        for _ in range(2):
            with trace.DeviceWork() as work:
                train_step(model, optimizer, ids, mask=mask)
            assert work.total_syncs == 0, work.sync_sites
    assert work.launches["optimizer (multi-tensor)"] > 0
    if path == EMULATED:
        assert chosen["ssd"] == "mamba-ssm" and chosen["routing"] == "triton"
        assert work.launches["triton (mamba-ssm)"] > 0 and work.launches["triton (ours)"] > 0


@pytest.mark.parametrize("path", ["torch", EMULATED])
def test_a_batch_with_more_chunks_than_planned_runs_again_without_waiting(path, dna_batch):
    torch.manual_seed(0)
    model = HNetLM(small_model_config("dna/hnet_1stage_tiny"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    ids, mask = padded_batch(dna_batch)
    (level,) = levels(model)
    with kernel_path(path, model):
        train_step(model, optimizer, ids, mask=mask)
        level.capacity.pinned = 2  # fewer slots than any row needs
        with trace.DeviceWork() as work:
            train_step(model, optimizer, ids, mask=mask)
    assert level.capacity.reruns == model.chunk_reruns() == 1
    assert work.total_syncs == 0, work.sync_sites


@pytest.mark.parametrize("path", ["torch", EMULATED])
@pytest.mark.parametrize("name", ["dna/hnet_1stage_tiny", "dna/hnet_2stage_tiny"])
def test_packed_step_reads_the_device_once_per_chunking_level(path, name, dna_batch):
    """Each chunking level reads its chunk counts (the shape of the next stage) once, and nothing else is
    read: ``cu_seqlens`` handed over on the host costs nothing (a device copy would cost the outermost
    stage one read: still one per stage), attention over packed rows groups its runs on the host."""
    torch.manual_seed(0)
    model = HNetLM(small_model_config(name))
    ids = dna_batch(1, 120, 5)
    cu = torch.tensor([0, 50, 51, 120], dtype=torch.int32)
    with kernel_path(path, model):
        model(ids, cu_seqlens=cu)
        with trace.DeviceWork() as work:
            out = model(ids, cu_seqlens=cu)
            out.logits.float().square().mean().backward()
    assert work.total_syncs == len(levels(model)), work.sync_sites
    assert all("geometry.py" in s for s in work.sync_sites), work.sync_sites


class CountEveryBatch(L.Callback):
    """Counts host reads from each batch's start to the next one's, so that everything Lightning does per
    step (hooks, optimizer, clipping, logging, progress bar, LR schedule) falls in one window."""

    def __init__(self):
        self.windows: list[tuple[int, list[str]]] = []
        self.batch = -1
        self.work: trace.DeviceWork | None = None

    def _close(self):
        if self.work is not None:
            self.work.__exit__(None, None, None)
            self.windows.append((self.batch, list(self.work.sync_sites)))
            self.work = None

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self._close()
        self.batch = batch_idx
        self.work = trace.DeviceWork()
        self.work.__enter__()

    def on_train_end(self, trainer, module):
        self._close()


def test_lightning_training_steps_between_logs_never_wait_for_the_device(tmp_path, monkeypatch):
    """``hnet-genomics pretrain`` as it runs (its Trainer, progress bar, checkpoints), with the optimizer a
    GPU gets (fused AdamW, so clipping goes through ``LMTask.configure_gradient_clipping``): the host reads
    the device at the first step (chunk counts not seen yet) and where Lightning writes its logs, never in
    between."""
    from hnet_genomics.data import demo
    from hnet_genomics.training import module, optim
    from hnet_genomics.training.pretrain import run_pretrain

    monkeypatch.setattr(module, "make_optimizer", functools.partial(optim.make_optimizer, fused=True))
    logged_types = set()
    original_log = L.LightningModule.log

    def log(self, name, value, *args, **kwargs):  # a Python number would be copied to the GPU, and waited for
        logged_types.add(type(value))
        return original_log(self, name, value, *args, **kwargs)

    monkeypatch.setattr(L.LightningModule, "log", log)
    counter = CountEveryBatch()
    config = tiny_config(9, ["train.log_every=4", "train.grad_clip=1.0"])
    run_pretrain(config, demo.HUMAN_FASTA, tmp_path, callbacks=[counter], progress=True, quiet=True)
    assert [b for b, _ in counter.windows] == list(range(9))
    logged = {b for b in range(9) if (b + 1) % 4 == 0}  # Lightning writes after steps 4 and 8
    waits = {b: sites for b, sites in counter.windows if sites}
    assert set(waits) <= logged | {0}, waits
    assert logged <= set(waits)  # the counter does see Lightning read the logged tensors
    assert logged_types == {torch.Tensor}


@pytest.mark.gpu
@pytest.mark.parametrize("room", ["planned", "too little"])
def test_padded_training_step_on_a_gpu_never_waits_for_the_device(room, dna_batch):
    """On CUDA with the kernels this machine has, under torch's own sync detector (an error on any
    synchronising call) as well as the counter: the chunk counts come back through pinned memory and an
    event, a batch needing more room runs again, the fused optimizer and clipping stay on the device."""
    torch.manual_seed(0)
    model = HNetLM(small_model_config("dna/hnet_1stage_tiny")).cuda()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    ids, mask = (t.cuda() for t in padded_batch(dna_batch))
    (level,) = levels(model)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        train_step(model, optimizer, ids, mask=mask)
    torch.cuda.synchronize()
    if room == "too little":
        level.capacity.pinned = 2
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        with trace.DeviceWork() as work, torch.autocast("cuda", dtype=torch.bfloat16):
            train_step(model, optimizer, ids, mask=mask)
    finally:
        torch.cuda.set_sync_debug_mode(previous)
    assert work.total_syncs == 0, work.sync_sites
    assert level.capacity.reruns == (room == "too little")

"""What a piece of work asks of a GPU, counted on any machine: kernel launches by op family, and host
synchronisations (the host waiting for the device).

``DeviceWork`` is a ``TorchDispatchMode``: every aten op that reaches the dispatcher below autograd is seen
once, forward and backward alike. The launch model, stated so that a count can be checked:

- an aten op on CUDA is one launch, except ops that launch nothing: views, ``empty*`` allocations, ``detach``
  and host-side constants (``lift_fresh``);
- a multi-tensor op (``_foreach_*``, ``_fused_adam(w)_``) is as many launches as ATen's
  ``multi_tensor_apply`` makes for these tensors: chunks of 65,536 elements, at most 320 blocks and at most
  110 / 64 / 48 / 36 / 30 tensors per launch for lists of depth 1 to 5; ``_foreach_norm`` adds its clean-up
  launch;
- a Triton kernel call is one launch (``gpu_kernels_on_cpu`` counts them; the aten ops a launcher runs on its
  arguments inside the call are its own business and are not counted).

Host synchronisations are the ops whose result the host must read before it can go on: ``_local_scalar_dense``
(``.item()``, ``int()``, ``float()``, ``bool()`` of a tensor), ``nonzero``, ``masked_select``, ``unique``,
``equal``, boolean-mask indexing (``x[mask]``, ``x[mask] = v``), ``repeat_interleave`` without
``output_size``, copies between host and device that are not ``non_blocking``; and, seen at the Python level
because a CPU tensor reaches no kernel there, ``Tensor.tolist``, ``Tensor.cpu`` and ``torch.tensor(data,
device=...)`` for a GPU. ``Tensor.numpy`` is not one: it refuses device tensors, so what it reads is host
memory. Reading a host tensor is free, and on a CPU-only machine every tensor is on the host, so tensors made
from Python data (``torch.tensor(data)``) while some ``DeviceWork`` watched, and everything computed from
such tensors alone, are remembered as host tensors and reading them is not counted; every other tensor
stands for device memory.

``gpu_kernels_on_cpu`` lets CPU tensors take the GPU providers of ``dispatch`` (Triton kernels run under
Triton's interpreter, ``TRITON_INTERPRET=1``), so a CPU machine follows the GPU path's control flow and
counts its launches and synchronisations. With ``execute=False`` the Triton kernels are counted but not run:
their outputs are then left uninitialised, which is fine for counting as long as nothing downstream decides
on their values (``model.drawn_routing.drawn_boundaries`` fixes the one decision that does, the chunk
boundaries, with ``quiet=trace.paused``).
"""

from __future__ import annotations

import contextlib
import math
import os
import traceback
import weakref
from collections import Counter
from collections.abc import Callable, Iterator

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from hnet_genomics.kernels import dispatch

_ACTIVE: list[DeviceWork] = []  # innermost last; Triton launches and Python-level reads report to all
_PY_HOOKS = contextlib.ExitStack()  # python_level_reads, installed while any DeviceWork is active
_HOST: dict[int, weakref.ref] = {}  # tensors made from Python data (host memory) that some DeviceWork saw made

NO_LAUNCH = {
    "empty",
    "empty_like",
    "empty_strided",
    "new_empty",
    "new_empty_strided",
    "detach",
    "lift_fresh",
    "lift_fresh_copy",
    "_unsafe_view",
    "sym_size",
    "sym_stride",
    "sym_numel",
    "sym_storage_offset",
    "is_same_size",
    "_has_compatible_shallow_copy_type",
    "record_stream",
    "_record_function_enter",
    "_record_function_enter_new",
    "_record_function_exit",
}
SYNC_OPS = {
    "_local_scalar_dense": "item",
    "nonzero": "nonzero",
    "nonzero_numpy": "nonzero",
    "argwhere": "nonzero",
    "masked_select": "masked_select",
    "_unique": "unique",
    "_unique2": "unique",
    "unique_dim": "unique",
    "unique_consecutive": "unique",
    "unique_dim_consecutive": "unique",
    "equal": "equal",
    "is_nonzero": "item",
    "bincount": "bincount",
}
FAMILIES = {
    "matmul": ("mm", "addmm", "bmm", "baddbmm", "addbmm", "_addmm_activation", "linear", "matmul"),
    "copy / cast": ("_to_copy", "copy", "clone", "_copy_from", "_copy_from_and_resize"),
    "fill": ("fill", "zero", "zeros", "ones", "full", "zeros_like", "ones_like", "full_like", "new_zeros")
    + ("new_ones", "new_full", "arange", "scalar_tensor"),
    "reduction": ("sum", "mean", "amax", "amin", "max", "min", "norm", "linalg_vector_norm", "cumsum", "cumprod")
    + ("prod", "var", "std", "logsumexp", "all", "any", "argmax", "argmin", "_log_softmax", "_softmax")
    + ("nll_loss_forward", "nll_loss_backward", "_log_softmax_backward_data", "_softmax_backward_data"),
    "gather / scatter": ("gather", "scatter", "scatter_add", "scatter_reduce", "index", "index_select", "index_put")
    + ("_index_put_impl", "index_add", "index_copy", "embedding", "embedding_dense_backward", "take", "cat")
    + ("stack", "sort", "argsort", "where", "masked_fill", "masked_scatter", "constant_pad_nd", "repeat")
    + ("repeat_interleave", "nonzero", "nonzero_static", "masked_select", "_unique2"),
}
ATTENTION = ("_scaled_dot_product", "_flash_attention", "_efficient_attention", "_cudnn_attention")
MTA_CHUNK, MTA_MAX_BLOCKS, MTA_MAX_TENSORS = 65536, 320, (110, 64, 48, 36, 30)


def op_family(name: str) -> str:
    """Family of an aten op by its name (``add``, ``mul_``, ``_foreach_mul_``, ...)."""
    if name.startswith(("_foreach_", "_fused_")):
        return "optimizer (multi-tensor)"
    if name.startswith(ATTENTION):
        return "attention"
    base = name.rstrip("_") if name.endswith("_") and not name.startswith("__") else name
    for family, names in FAMILIES.items():
        if base in names or name in names:
            return family
    return "elementwise"


def multi_tensor_launches(lists: list[list[torch.Tensor]]) -> int:
    """Launches of ATen's ``multi_tensor_apply`` over ``lists`` (same length each; depth = len(lists))."""
    depth = len(lists)
    if not depth or not lists[0]:
        return 0
    max_tensors = MTA_MAX_TENSORS[min(depth, len(MTA_MAX_TENSORS)) - 1]
    launches = blocks = tensors = 0
    sizes = [t.numel() for t in lists[0] if t.numel()]
    for i, numel in enumerate(sizes):
        tensors += 1
        chunks = math.ceil(numel / MTA_CHUNK)
        for c in range(chunks):
            blocks += 1
            last_chunk = c == chunks - 1
            full = (tensors == max_tensors and last_chunk) or blocks == MTA_MAX_BLOCKS
            if full or (i == len(sizes) - 1 and last_chunk):
                launches += 1
                blocks = 0
                tensors = 0 if last_chunk else 1  # a tensor cut mid-way starts the next launch
    return launches


def _tensor_lists(args, kwargs) -> list[list[torch.Tensor]]:
    values = list(args) + list((kwargs or {}).values())
    return [
        list(v) for v in values if isinstance(v, (list, tuple)) and v and all(isinstance(t, torch.Tensor) for t in v)
    ]


def _multi_tensor(name: str, args, kwargs) -> int:
    lists = _tensor_lists(args, kwargs)
    if name.startswith("_fused_adam"):  # params, grads, exp_avgs, exp_avg_sqs (+ max_exp_avg_sqs), then steps
        lists = lists[: 5 if (kwargs or {}).get("amsgrad", False) else 4]
    elif not name.endswith("_"):
        lists = lists + lists[:1]  # an out-of-place op also walks its outputs
    return multi_tensor_launches(lists) + (1 if name.startswith("_foreach_norm") else 0)


def _bool_index(indices) -> bool:
    return any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8) for i in indices or ())


def _blocking_copy(name: str, args, kwargs) -> bool:
    """A copy between host and device memory that the host waits for (``non_blocking=False``); a CPU-only
    run never sees one (its "device" is the host), a CUDA run does."""
    if name == "copy_" and len(args) >= 2:
        dst, src = args[0], args[1]
        non_blocking = args[2] if len(args) > 2 else kwargs.get("non_blocking", False)
    elif name == "_to_copy" and args and kwargs.get("device") is not None:
        src, dst, non_blocking = args[0], None, kwargs.get("non_blocking", False)
        return not non_blocking and (src.device.type == "cpu") != (torch.device(kwargs["device"]).type == "cpu")
    else:
        return False
    crosses = isinstance(src, torch.Tensor) and (dst.device.type == "cpu") != (src.device.type == "cpu")
    return crosses and not non_blocking


def _sync_kind(name: str, func, args, kwargs) -> str | None:
    if name in SYNC_OPS:
        return SYNC_OPS[name]
    if _blocking_copy(name, args, kwargs):
        return "blocking copy between host and device"
    if name in ("index", "index_put", "index_put_", "_index_put_impl_", "_unsafe_index", "_unsafe_index_put"):
        return "boolean-mask indexing" if _bool_index(args[1] if len(args) > 1 else kwargs.get("indices")) else None
    if name == "repeat_interleave" and func._overloadname.startswith("Tensor"):
        output_size = (kwargs or {}).get("output_size", args[2] if len(args) > 2 else None)
        return None if output_size is not None else "repeat_interleave"
    return None


def _where() -> str:
    """Where an op was asked for: the innermost frame outside torch (and outside this module), and when that
    is not ours, our innermost frame too."""
    frames = [
        f
        for f in traceback.extract_stack()[:-3]
        if f"{os.sep}torch{os.sep}" not in f.filename and not f.filename.endswith("trace.py")
    ]
    if not frames:
        return "?"
    ours = [f for f in frames if "hnet_genomics" in f.filename]
    show = [frames[-1]] + ([ours[-1]] if ours and ours[-1] is not frames[-1] else [])
    return " from ".join(f"{os.path.basename(f.filename)}:{f.lineno} ({(f.line or '').strip()})" for f in show)


class DeviceWork(TorchDispatchMode):
    """Counts launches (by family) and host synchronisations (by kind, with where they happened)."""

    def __init__(self) -> None:
        super().__init__()
        self.launches: Counter[str] = Counter()
        self.syncs: Counter[str] = Counter()
        self.sync_sites: list[str] = []
        self.paused = 0

    @staticmethod
    def on_host(tensor) -> bool:
        if not isinstance(tensor, torch.Tensor):
            return False
        ref = _HOST.get(id(tensor))
        return ref is not None and ref() is tensor

    @staticmethod
    def _mark_host(tensor: torch.Tensor) -> None:
        key = id(tensor)

        def forget(_ref: weakref.ref, key: int = key) -> None:
            if _HOST.get(key) is _ref:
                del _HOST[key]

        _HOST[key] = weakref.ref(tensor, forget)

    @property
    def total_launches(self) -> int:
        return sum(self.launches.values())

    @property
    def total_syncs(self) -> int:
        return sum(self.syncs.values())

    def add_launch(self, family: str, n: int = 1) -> None:
        if not self.paused and n:
            self.launches[family] += n

    def add_sync(self, kind: str, tensor=None) -> None:
        if not self.paused and not self.on_host(tensor):
            self.syncs[kind] += 1
            self.sync_sites.append(f"{kind} at {_where()}")

    def reset(self) -> None:
        self.launches.clear()
        self.syncs.clear()
        self.sync_sites.clear()

    @contextlib.contextmanager
    def pause(self) -> Iterator[None]:
        self.paused += 1
        try:
            yield
        finally:
            self.paused -= 1

    def __enter__(self):
        if not _ACTIVE:
            _PY_HOOKS.enter_context(python_level_reads())
        _ACTIVE.append(self)
        return super().__enter__()

    def __exit__(self, *exc):
        _ACTIVE.remove(self)
        if not _ACTIVE:
            _PY_HOOKS.close()
        return super().__exit__(*exc)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.paused:
            return out
        name = func._opname
        inputs = [t for t in _flat(args) + _flat(list(kwargs.values())) if isinstance(t, torch.Tensor)]
        if name in ("lift_fresh", "lift_fresh_copy") or (inputs and all(self.on_host(t) for t in inputs)):
            for t in _flat([out]):  # host data, or computed from host data alone: still on the host
                if isinstance(t, torch.Tensor):
                    self._mark_host(t)
            return out
        kind = _sync_kind(name, func, args, kwargs)
        if kind is not None:
            self.add_sync(kind)
        if name.startswith(("_foreach_", "_fused_adam")):
            self.add_launch(op_family(name), _multi_tensor(name, args, kwargs))
        elif not (func.is_view or name in NO_LAUNCH):
            self.add_launch(op_family(name))
        return out


def _flat(values) -> list:
    out = []
    for v in values:
        if isinstance(v, (list, tuple)):
            out.extend(_flat(v))
        else:
            out.append(v)
    return out


def _report_launch(family: str) -> None:
    for work in _ACTIVE:
        work.add_launch(family)


def _report_sync(kind: str, tensor=None) -> None:
    for work in _ACTIVE:
        work.add_sync(kind, tensor)


@contextlib.contextmanager
def _all_paused() -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for work in list(_ACTIVE):
            stack.enter_context(work.pause())
        yield


def paused() -> contextlib.AbstractContextManager:
    """Nothing done inside is counted by any active ``DeviceWork`` (set-up that a real step would not do)."""
    return _all_paused()


def _package_of(fn) -> str:
    module = getattr(fn, "__module__", "") or ""
    if module.startswith("hnet_genomics"):
        return "ours"
    return module.split(".")[0].replace("_", "-") or "triton"


@contextlib.contextmanager
def python_level_reads() -> Iterator[None]:
    """Count what a CPU tensor answers without any aten op but a device tensor only after a wait:
    ``Tensor.tolist`` and ``Tensor.cpu`` (reads), and ``torch.tensor(data, device=...)`` for a GPU (Python
    data copied from pageable memory, which waits for the copy; on a CPU-only machine that device is the
    host and the call is free). ``DeviceWork`` installs this while it counts."""
    originals = {name: getattr(torch.Tensor, name) for name in ("tolist", "cpu")}
    original_tensor = torch.tensor

    def wrap(name, original):
        def method(self, *args, **kwargs):
            _report_sync(name, self)
            with _all_paused():
                return original(self, *args, **kwargs)

        return method

    def tensor(data, *args, **kwargs):
        device = kwargs.get("device")
        if device is not None and torch.device(device).type != "cpu":
            _report_sync("torch.tensor(..., device=)")
        return original_tensor(data, *args, **kwargs)

    try:
        for name, original in originals.items():
            setattr(torch.Tensor, name, wrap(name, original))
        torch.tensor = tensor
        yield
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)
        torch.tensor = original_tensor


@contextlib.contextmanager
def gpu_kernels_on_cpu(ops: tuple[str, ...] | None = None, execute: bool = True) -> Iterator[dict[str, str]]:
    """CPU tensors take the GPU providers of ``ops`` (default: every provider that loads here), with Triton
    kernels under the interpreter; yields {op: provider package or why not}. Needs ``TRITON_INTERPRET=1``
    in the environment before any Triton kernel module is imported.

    What the interpreter needs to stand in for a GPU comes from ``kernels.triton.interpreter.interpreted_as_gpu``.
    ``execute=False`` counts each Triton launch without running it.
    """
    if os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError("gpu_kernels_on_cpu needs TRITON_INTERPRET=1 set before triton is imported")
    from triton.runtime.interpreter import InterpretedFunction

    from hnet_genomics.kernels.triton.interpreter import interpreted_as_gpu

    chosen: dict[str, str] = {}
    for op in ops or tuple(dispatch.PROVIDERS):
        kernel, why = dispatch.load(op)
        chosen[op] = dispatch.loaded_label(op) if kernel is not None else f"torch ({why})"
    usable = {op for op, impl in chosen.items() if not impl.startswith("torch (")}

    def gpu_kernel(op, like):
        return dispatch.load(op)[0] if op in usable and dispatch.requested_backend() != "torch" else None

    original_run = InterpretedFunction.run

    def run(self, *args, grid, warmup, **kwargs):
        if warmup:
            return None
        _report_launch(f"triton ({_package_of(self.fn)})")
        if not execute:
            return None
        with _all_paused():
            return original_run(self, *args, grid=grid, warmup=warmup, **kwargs)

    autocast_enabled: Callable[..., bool] = torch.is_autocast_enabled
    patches = [
        (dispatch, "gpu_kernel", gpu_kernel),
        (InterpretedFunction, "run", run),
        # mamba-ssm's fused mixer casts its output projection to the autocast dtype when it sees CUDA autocast
        # (``torch.is_autocast_enabled()``, no device named); CPU autocast stands in for it here, so the weight
        # is cast, and saved for the backward, in bf16 as on a GPU.
        (torch, "is_autocast_enabled", lambda *a: autocast_enabled(*(a or ("cpu",)))),
        (torch, "get_autocast_gpu_dtype", lambda: torch.get_autocast_dtype("cpu")),
    ]
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in patches]
    try:
        for obj, name, value in patches:
            setattr(obj, name, value)
        with interpreted_as_gpu():
            yield chosen
    finally:
        for obj, name, value in saved:
            setattr(obj, name, value)


@contextlib.contextmanager
def triton_launches() -> Iterator[None]:
    """On a GPU: every compiled Triton kernel call is reported as a launch to the active ``DeviceWork``s (the
    dispatch mode sees only aten ops). Calls made while an autotuner benchmarks its configs count too: count
    after the first step."""
    from triton.runtime.jit import JITFunction

    original_run = JITFunction.run

    def run(self, *args, grid, warmup, **kwargs):
        if not warmup:
            _report_launch(f"triton ({_package_of(self.fn)})")
        with _all_paused():
            return original_run(self, *args, grid=grid, warmup=warmup, **kwargs)

    JITFunction.run = run
    try:
        yield
    finally:
        JITFunction.run = original_run

"""The Mamba-2 depthwise conv, forward and forward+backward: the torch taps vs our Triton kernel vs causal-conv1d.

As the model's mixer calls it: bf16 activations (autocast) read from their column slice of the in-projection
output (2 d_inner + 2 G N + H wide, no copy), fp32 weights and bias, width 4, SiLU fused; C = d_inner + 2 G N
channels (1,280 for the paper's DNA model: d_model 512, expand 2, d_state 128, one group). Shapes: the padded
micro-batches 64 x 1,024 and 8 x 8,192, and the packed row of 65,536 bases with a sequence start every 1,024
(resets: positions for our kernel, seq_idx for causal-conv1d).

Implementations: ``torch taps`` (what runs without either kernel; bf16 throughout since parameters follow the
activation's dtype), ``torch taps, fp32 promotion`` (the same taps with the fp32 parameters promoting every tap,
as before that change), ``Triton (ours)`` at one or more tile sizes (``--tiles``), and causal-conv1d when it
loads. Columns: median milliseconds, speed-up over the torch taps, and the bytes autograd keeps for the
backward (measured with saved-tensor hooks, the storage of the projection itself not counted).

On a CPU our kernel runs under the Triton interpreter, at tiny shapes: a smoke test of the harness, not a
speed claim. ``--quick`` uses those tiny shapes on any device (how the GPU check proves its harness).

    python benchmarks/conv.py --out benchmarks/results/conv-cpu.md
    python benchmarks/conv.py --out benchmarks/results/conv-h200.md     # on a GPU machine (the GPU check runs this)
    python benchmarks/conv.py --compare-tiles --out conv-tiles-h200.md  # the alternative tile sizes beside
"""

from __future__ import annotations

import argparse
import functools
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported: our kernel on CPU tensors

import torch.nn.functional as F  # noqa: E402
from kernels import device_name, fwd_and_bwd  # noqa: E402

from hnet_genomics.atomic import write_text_atomic  # noqa: E402
from hnet_genomics.kernels import conv as conv_k  # noqa: E402
from hnet_genomics.kernels import dispatch  # noqa: E402
from hnet_genomics.training.resources import saved_bytes  # noqa: E402

WIDTH = 4


def paper_dims(d_model: int = 512, expand: int = 2, d_state: int = 128, ngroups: int = 1, head_dim: int = 64):
    """(conv channels, projection width, first conv column) of a Mamba-2 mixer: [z | x B C | dt]."""
    d_inner = expand * d_model
    channels = d_inner + 2 * ngroups * d_state
    return channels, d_inner + channels + d_inner // head_dim, d_inner


def taps_promoting(x, w, bias, positions, has_resets, activation):
    """The taps with fp32 parameters against a bf16 activation: every product promotes to fp32."""
    y = conv_k.causal_conv1d_ref(x, w, bias, positions if has_resets else None)
    return F.silu(y) if activation == "silu" else y


def taps(x, w, bias, positions, has_resets, activation):
    """The torch path of ``conv.causal_conv1d`` (on a GPU: parameters cast to the activation's dtype)."""
    dispatch.set_backend("torch")
    try:
        return conv_k.causal_conv1d(x, w, bias, positions, has_resets=has_resets, activation=activation)
    finally:
        dispatch.set_backend(None)


def candidates(device: torch.device, tile_choices: list) -> dict[str, Callable]:
    out: dict[str, Callable] = {"torch taps": taps}
    if device.type == "cuda":
        out["torch taps, fp32 promotion (before)"] = taps_promoting
    from hnet_genomics.kernels.triton.conv import causal_conv1d_triton

    for tiles in tile_choices:
        name = f"Triton (ours) {tiles.rows}x{tiles.channels}, {tiles.per_program} tiles, {tiles.warps} warps"
        out[name] = functools.partial(causal_conv1d_triton, tiles=tiles)
    if device.type == "cuda":
        from hnet_genomics.kernels import gpu_conv

        try:
            gpu_conv.require()
            out["causal-conv1d"] = gpu_conv.causal_conv1d
        except Exception as e:  # not installed, or installed without its CUDA extension
            print(f"causal-conv1d: not measured ({type(e).__name__}: {e})".splitlines()[0], flush=True)
    return out


def inputs(device: torch.device, dtype: torch.dtype, b: int, length: int, seq_len: int, dims):
    """The projection output (B, L, width), the conv's fp32 parameters and positions with a start every
    ``seq_len`` positions."""
    channels, width, first = dims
    g = torch.Generator(device).manual_seed(0)
    proj = torch.randn(b, length, width, device=device, generator=g).to(dtype).requires_grad_()
    w = (torch.randn(channels, WIDTH, device=device, generator=g) * 0.5).requires_grad_()
    bias = torch.randn(channels, device=device, generator=g).requires_grad_()
    positions = (torch.arange(length, device=device) % seq_len).expand(b, length)
    grad = torch.randn(b, length, channels, device=device, generator=g).to(dtype)
    return proj, w, bias, positions, grad


def _conv_call(fn, proj, columns, w, bias, positions, has_resets) -> torch.Tensor:
    return fn(proj[..., columns], w, bias, positions, has_resets, "silu")


def bench(
    device: torch.device, cases: list[tuple[str, int, int, int]], dims, tile_choices, reps: int, dtype: torch.dtype
) -> list[str]:
    channels, _, first = dims
    rows = []
    for layout, b, length, seq_len in cases:
        proj, w, bias, positions, grad = inputs(device, dtype, b, length, seq_len, dims)
        has_resets = layout == "packed"
        results = {}
        for name, fn in candidates(device, tile_choices).items():
            call = functools.partial(
                _conv_call, fn, proj, slice(first, first + channels), w, bias, positions, has_resets
            )
            try:
                fwd, both = fwd_and_bwd(call, (proj, w, bias), grad, device, reps)
                kept = saved_bytes(call, [proj])
            except torch.cuda.OutOfMemoryError:
                rows.append(f"| {layout} | {b} x {length:,} | {channels} | {name} | out of memory | | | |")
                continue
            results[name] = (fwd, both, kept)
            if device.type == "cuda":
                torch.cuda.empty_cache()
        base = results.get("torch taps")
        for name, (fwd, both, kept) in results.items():
            speed = f"{base[0] / fwd:.2f}x / {base[1] / both:.2f}x" if base else "n/a"
            rows.append(
                f"| {layout} | {b} x {length:,} | {channels} | {name} | {fwd * 1e3:.3f} | {both * 1e3:.3f} | "
                f"{speed} | {kept / 2**20:,.2f} |"
            )
            print(rows[-1], flush=True)
    return rows


def register_report(tile_choices, capability: int = 90) -> list[str]:
    """Registers and spills ptxas reports for each tile choice, compiled as a launch would specialize it (16-byte
    aligned pointers, strides divisible by 16, a unit stride as a constant), without a GPU: the training case
    (bf16 projection slice, fp32 weights, width 4, positions, SiLU). Run without TRITON_INTERPRET."""
    import subprocess
    import tempfile

    import triton
    from triton._C.libtriton import native_specialize_impl
    from triton.backends.compiler import BaseBackend, GPUTarget
    from triton.backends.nvidia.compiler import get_ptxas
    from triton.compiler import ASTSource
    from triton.runtime.jit import JITFunction

    from hnet_genomics.kernels.triton import conv as triton_conv

    ptxas = get_ptxas(capability)
    ptxas = getattr(ptxas, "path", ptxas)
    rows: list[str] = []
    current: list = []

    def compile_launch(self, *args, grid=None, warmup=False, **kwargs):
        names = [p.name for p in self.params]
        values = {**dict(zip(names, args)), **{k: v for k, v in kwargs.items() if k in names}}
        signature, constants, attrs = {}, {}, {}
        for i, param in enumerate(self.params):
            value = values.get(param.name, param.default)
            kind, attr = (
                ("constexpr", value)
                if param.is_constexpr or value is None
                else native_specialize_impl(BaseBackend, value, False, True, True)
            )
            signature[param.name] = kind
            if kind == "constexpr":
                constants[param.name] = attr
            elif isinstance(attr, str) and attr:
                attrs[(i,)] = BaseBackend.parse_attr(attr)
        options = {"num_warps": kwargs["num_warps"]}
        kernel = triton.compile(
            ASTSource(self, signature, constants, attrs), target=GPUTarget("cuda", capability, 32), options=options
        )
        with tempfile.NamedTemporaryFile("w", suffix=".ptx") as ptx:
            ptx.write(kernel.asm["ptx"])
            ptx.flush()
            info = subprocess.run(
                [ptxas, "-v", f"--gpu-name=sm_{capability}a", ptx.name, "-o", os.devnull],
                capture_output=True,
                text=True,
            ).stderr
        registers = next(line for line in info.splitlines() if "registers" in line).split("Used ")[1].split(" ")[0]
        spills = next(line for line in info.splitlines() if "spill stores" in line).split(", ")[1].split(" ")[0]
        tiles = current[0]
        rows.append(
            f"| {self.__name__} | {tiles.rows}x{tiles.channels}, {tiles.per_program} tiles, {tiles.warps} warps | "
            f"{registers} | {spills} |"
        )
        print(rows[-1], flush=True)

    JITFunction.run = compile_launch
    for tiles in tile_choices:
        current[:] = [tiles]
        proj = torch.randn(1, 64, 2320, dtype=torch.bfloat16)
        x = proj[..., 1024:2304].requires_grad_()
        w = torch.randn(1280, WIDTH, requires_grad=True)
        positions = torch.arange(64)[None]
        out = triton_conv.causal_conv1d_triton(x, w, w[:, 0], positions, True, "silu", tiles=tiles)
        out.float().sum().backward()
    return rows


def parse_tiles(text: str):
    from hnet_genomics.kernels.triton.conv import Tiles

    parts = tuple(int(v) for v in text.split(","))
    if len(parts) != 4:
        raise argparse.ArgumentTypeError(f"--tiles wants ROWS,CHANNELS,TILES_PER_PROGRAM,WARPS, got {text!r}")
    return Tiles(*parts)


def main() -> None:
    from hnet_genomics.kernels.triton import conv as triton_conv

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write a markdown report here")
    parser.add_argument("--reps", type=int, default=None, help="timed repetitions (default 20 GPU, 2 CPU)")
    parser.add_argument(
        "--tiles",
        type=parse_tiles,
        nargs="+",
        default=None,
        help="tile sizes of our kernel to compare, each as ROWS,CHANNELS,TILES_PER_PROGRAM,WARPS (default: the "
        "shipped ones; with --compare-tiles also three others)",
    )
    parser.add_argument(
        "--compare-tiles", action="store_true", help="time the alternative tile choices beside the shipped ones"
    )
    parser.add_argument(
        "--quick", action="store_true", help="toy shapes and few repetitions on any device: checks the harness"
    )
    parser.add_argument(
        "--registers",
        action="store_true",
        help="instead of timing: compile each tile choice for sm_90 and print ptxas's registers and spills (no GPU "
        "needed; run with TRITON_INTERPRET=0)",
    )
    args = parser.parse_args()
    if args.registers:
        import triton

        choices = args.tiles or [triton_conv.SHIPPED, *triton_conv.ALTERNATIVES]
        rows = register_report(choices)
        text = "\n".join(
            [
                "# Registers and spills of the Triton conv per tile choice (sm_90, ptxas, no GPU)",
                "",
                f"Compiled on {device_name(torch.device('cpu'))} with triton {triton.__version__} for sm_90, "
                "specialized as a launch would be (16-byte aligned pointers, strides divisible by 16, unit strides "
                "constant): the training case, a bf16 slice of a 2,320-wide projection, 1,280 channels, fp32 "
                "weights of width 4, positions, SiLU. The shipped tiles come first.",
                "",
                "| kernel | tiles | registers | spill stores (bytes) |",
                "|---|---|---|---|",
                *rows,
                "",
                "Command: `TRITON_INTERPRET=0 python benchmarks/conv.py --registers"
                + (f" --out {args.out}`" if args.out else "`"),
                "",
            ]
        )
        if args.out:
            write_text_atomic(args.out, text)
        print(text)
        return
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gpu = device.type == "cuda"
    reps = args.reps or (20 if gpu and not args.quick else 2)
    shipped, others = triton_conv.SHIPPED, list(triton_conv.ALTERNATIVES)
    tile_choices = args.tiles or ([shipped, *others] if args.compare_tiles else [shipped])
    print(f"device: {device_name(device)}", flush=True)
    if gpu and not args.quick:
        dims = paper_dims()
        cases = [("padded", 64, 1024, 1024), ("padded", 8, 8192, 8192), ("packed", 1, 65536, 1024)]
        dtype = torch.bfloat16
    else:
        dims = paper_dims(d_model=32, d_state=16, head_dim=16)  # 96 channels of a 180-wide projection
        cases = [("padded", 2, 64, 64), ("packed", 1, 128, 40)]
        dtype = torch.bfloat16
    rows = bench(device, cases, dims, tile_choices, reps, dtype)
    import triton

    report = "\n".join(
        [
            "# Depthwise causal conv of the Mamba-2 mixer: torch taps, our Triton kernel, causal-conv1d",
            "",
            f"Hardware: {device_name(device)}. torch {torch.__version__}, triton {triton.__version__}"
            + ("" if gpu else f"; shared with other jobs (1-minute load average {os.getloadavg()[0]:.1f} at the end)")
            + ".",
            "",
            (
                "The paper DNA model's conv: "
                if gpu
                else "Tiny shapes, our kernel under the Triton interpreter: a smoke test of the harness, not a "
                "speed claim (on a CPU the torch taps keep promoting to fp32: the CPU path is unchanged). "
            )
            + f"{dims[0]} channels read from a {dims[1]}-wide bf16 projection output (columns {dims[2]} to "
            f"{dims[2] + dims[0] - 1}), fp32 weights of width {WIDTH} and bias, SiLU. Packed: one row, a sequence "
            "start every 1,024 positions"
            + ("" if gpu else " (every 40 here)")
            + ". Median milliseconds per call; speed-up over the torch taps (forward / forward+backward); "
            "saved MiB: what autograd keeps for the backward besides the projection output.",
            "",
            "| layout | B x L | C | implementation | forward ms | fwd+bwd ms | speed-up | saved MiB |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"Command: `{shlex.join(['python', 'benchmarks/conv.py', *sys.argv[1:]])}`",
            "",
        ]
    )
    if args.out:
        write_text_atomic(args.out, report)
    print(report)


if __name__ == "__main__":
    main()

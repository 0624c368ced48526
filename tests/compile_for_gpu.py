"""Compile every Triton launch our GPU path makes for real GPU targets, on a machine without a GPU.

Run as a script in a process *without* TRITON_INTERPRET (the interpreter never compiles, which is why it let a
kernel that the compiler refuses pass every CPU test). Each ``JITFunction.run`` becomes a compile of that
launch's signature and constexprs for every target named on the command line (Triton's front end, LLVM and the
ptxas it bundles need no GPU); nothing is launched. The wrappers run forward and backward on CPU tensors, so
the launches are exactly the ones training makes. ``--mamba-ssm`` also drives mamba-ssm's Triton SSD and
gated RMSNorm through our wrappers, and its fused mixer on our conv, compiling each autotuned kernel's first
config. Prints one JSON object: the distinct kernels compiled, their targets, and every failure as
``kernel [constexprs] target: error``.

    python tests/compile_for_gpu.py 90 80 [--mamba-ssm]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import types

import torch

DTYPES = {
    torch.float32: "fp32",
    torch.float16: "fp16",
    torch.bfloat16: "bf16",
    torch.int64: "i64",
    torch.int32: "i32",
    torch.int16: "i16",
    torch.int8: "i8",
    torch.uint8: "u8",
    torch.bool: "i1",
}
LAUNCH_OPTIONS = {"num_warps", "num_stages", "num_ctas", "maxnreg", "grid", "warmup"}


def signature(fn, args: tuple, kwargs: dict) -> tuple[dict, dict]:
    """(Triton signature, constexprs) of one launch, bound as Triton binds it (positional, then keywords)."""
    names = [p.name for p in fn.params]
    values = dict(zip(names, args))
    values.update({k: v for k, v in kwargs.items() if k in names})
    sig, const = {}, {}
    for param in fn.params:
        value = values.get(param.name, param.default)
        if param.is_constexpr or value is None:
            sig[param.name] = "constexpr"
            const[param.name] = value
        elif isinstance(value, torch.Tensor):
            sig[param.name] = "*" + DTYPES[value.dtype]
        elif hasattr(value, "dtype") and hasattr(value, "data_ptr"):  # a tensor wrapper (mamba-ssm's reinterpret)
            sig[param.name] = "*" + DTYPES[value.dtype]
        elif isinstance(value, bool):
            sig[param.name] = "i1"
        elif isinstance(value, int):
            sig[param.name] = "i32" if -(2**31) <= value < 2**31 else "i64"
        elif isinstance(value, float):
            sig[param.name] = "fp32"
        else:
            raise TypeError(f"{fn.__name__}: cannot type argument {param.name}={value!r}")
    return sig, const


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("capabilities", nargs="+", type=int, help="compute capabilities, e.g. 90 (H100) 80 (A100)")
    parser.add_argument("--mamba-ssm", action="store_true")
    args = parser.parse_args()
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        print("compile_for_gpu: unset TRITON_INTERPRET (the interpreter does not compile)", file=sys.stderr)
        return 2
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from triton.runtime.jit import JITFunction

    targets = [GPUTarget("cuda", cap, 32) for cap in args.capabilities]
    compiled: dict[str, set[str]] = {}
    failures: list[str] = []
    seen: set[str] = set()

    def compile_launch(self, *a, grid=None, warmup=False, **kw):
        sig, const = signature(self, a, kw)
        options = {k: kw[k] for k in ("num_warps", "num_stages") if k in kw}
        label = f"{self.__name__} {sorted((k, str(v)) for k, v in const.items())}"
        for target in targets:
            key = f"{label} {sorted(sig.items())} {options} sm_{target.arch}"
            if key in seen:
                continue
            seen.add(key)
            try:
                triton.compile(ASTSource(self, sig, const), target=target, options=options)
                compiled.setdefault(self.__name__, set()).add(f"sm_{target.arch}")
            except Exception as e:  # every failure is reported, none stops the others
                failures.append(f"{label} sm_{target.arch}: {type(e).__name__}: {str(e).strip().splitlines()[-1]}")
        return None

    JITFunction.run = compile_launch
    drive_own_kernels()
    if args.mamba_ssm:
        drive_mamba_ssm()
    print(json.dumps({"compiled": {k: sorted(v) for k, v in sorted(compiled.items())}, "failures": failures}))
    return 0


def drive_own_kernels() -> None:
    """Our EMA dechunk/scan, routing and conv kernels, forward and backward, in the dtypes and tile sizes training
    uses."""
    from hnet_genomics.kernels.triton.ema_dechunk import ema_dechunk_triton, ema_scan_triton
    from hnet_genomics.kernels.triton.routing import routing_fused_triton

    for dtype in (torch.float32, torch.bfloat16):
        for block_t in (16, 64):
            x = torch.randn(1, 40, 64, dtype=dtype, requires_grad=True)
            p = torch.rand(1, 40, requires_grad=True)
            idx = torch.arange(40)[None].repeat_interleave(2, 1)
            ema_dechunk_triton(x, p, idx, block_t=block_t).float().sum().backward()
            ema_scan_triton(x, p, block_t=block_t).float().sum().backward()
        q = torch.randn(2, 40, 64, dtype=dtype, requires_grad=True)
        starts = torch.zeros(2, 40, dtype=torch.bool)
        routing_fused_triton(q, q, starts)[0].sum().backward()
    drive_conv()


def drive_conv() -> None:
    """The depthwise conv as the Mamba-2 mixer runs it (a bf16 column slice of the projection, fp32 weights, SiLU,
    width 4; positions in the unfused mixer, seq_idx through mamba-ssm's fused one, none for padded rows), and
    the other widths, dtypes and options the kernel takes."""
    from hnet_genomics.kernels.triton import conv

    positions = torch.cat([torch.arange(30), torch.arange(10)])[None]
    seq_idx = torch.cat([torch.zeros(30), torch.ones(10)]).to(torch.int32)[None]
    cases = [  # x dtype, weight dtype, width, bias, silu, resets
        (torch.bfloat16, torch.float32, 4, True, True, "positions"),
        (torch.bfloat16, torch.float32, 4, True, True, "seq_idx"),
        (torch.bfloat16, torch.float32, 4, True, True, None),
        (torch.bfloat16, torch.bfloat16, 4, True, True, "positions"),
        (torch.float32, torch.float32, 4, True, True, "positions"),
        (torch.float32, torch.float32, 2, False, False, None),
        (torch.float32, torch.float32, 3, True, False, "seq_idx"),
        (torch.float16, torch.float32, 4, False, True, "positions"),
    ]
    for x_dtype, w_dtype, width, with_bias, silu, resets in cases:
        zx = torch.randn(1, 40, 200, dtype=x_dtype)
        x = zx[..., 8:136].requires_grad_()
        w = torch.randn(128, width, dtype=w_dtype, requires_grad=True)
        bias = torch.randn(128, dtype=w_dtype, requires_grad=True) if with_bias else None
        activation = "silu" if silu else None
        if resets == "seq_idx":
            out = conv.conv_fwd_function(x.detach().transpose(1, 2), w, bias, seq_idx, None, None, silu)
            conv.conv_bwd_function(x.detach().transpose(1, 2), w, bias, out, seq_idx, None, None, None, False, silu)
            continue
        y = conv.causal_conv1d_triton(x, w, bias, positions, resets == "positions", activation)
        y.float().sum().backward()
    for tiles in conv.ALTERNATIVES:  # the tile sizes benchmarks/conv.py compares on a GPU
        x = torch.randn(1, 40, 200, dtype=torch.bfloat16)[..., 8:136].requires_grad_()
        w = torch.randn(128, 4, requires_grad=True)
        conv.causal_conv1d_triton(x, w, w[:, 0], positions, True, "silu", tiles=tiles).float().sum().backward()


def drive_mamba_ssm() -> None:
    """mamba-ssm's kernels through our wrappers (each autotuned kernel with its first config: the arguments and
    dtypes we pass are what can break, not upstream's tile choices), no CUDA device context."""
    from triton.runtime.autotuner import Autotuner

    def first_config(self, *a, **kw):
        self.best_config = self.configs[0]
        return self.fn.run(*a, **{**kw, **self.best_config.all_kwargs()})

    Autotuner.run = first_config
    torch.cuda.device = lambda *a, **k: contextlib.nullcontext()
    sm = types.SimpleNamespace(multi_processor_count=132, name="compile only", gcnArchName="")
    torch.cuda.get_device_properties = lambda *a, **k: sm
    from hnet_genomics.kernels import gpu_mamba

    for dtype in (torch.float32, torch.bfloat16):
        b, l, h, p, n = 1, 64, 2, 16, 16
        x = torch.randn(b, l, h, p, dtype=dtype, requires_grad=True)
        dt = torch.rand(b, l, h, requires_grad=True)
        A = (-torch.rand(h)).requires_grad_()
        B = torch.randn(b, l, 1, n, dtype=dtype, requires_grad=True)
        C = torch.randn(b, l, 1, n, dtype=dtype, requires_grad=True)
        reset = torch.zeros(b, l, dtype=torch.bool)
        reset[:, 0] = reset[:, 30] = True
        gpu_mamba.ssd_scan(x, dt, A, B, C, reset=reset, chunk_size=32).float().sum().backward()
        xs = torch.randn(2, 8, 64, dtype=dtype, requires_grad=True)
        w = torch.ones(64, requires_grad=True)
        gpu_mamba.rms_norm(xs, w, 1e-5).float().sum().backward()
        residual = torch.randn(2, 8, 64, requires_grad=True)  # the fp32 residual stream
        normed, total = gpu_mamba.add_rms_norm(xs, residual, w, 1e-5)
        (normed.float().sum() + total.sum()).backward()
        gpu_mamba.add_rms_norm(xs, None, w, 1e-5)[0].float().sum().backward()
        gpu_mamba.add_rms_norm(xs, residual, w, 1e-5, keep_residual=False)[0].float().sum().backward()
        gpu_mamba.gated_rms_norm(xs, xs.detach().clone().requires_grad_(), w, 1e-5, 32).float().sum().backward()
    drive_fused_mixer_on_triton_conv()


def drive_fused_mixer_on_triton_conv() -> None:
    """mamba-ssm's fused mixer with our conv in causal-conv1d's place (as on a GPU without causal-conv1d), bf16
    projection as under autocast, packed sequences."""
    from hnet_genomics.kernels import gpu_mamba
    from hnet_genomics.kernels.mamba_mixer import MixerDims, MixerWeights

    gpu_mamba.require_split_triton_conv()
    dims = MixerDims(d_inner=64, nheads=4, head_dim=16, ngroups=1, d_state=16, chunk_size=32, eps=1e-5)
    conv_dim = dims.d_inner + 2 * dims.bc_width
    weights = MixerWeights(
        *(
            t.requires_grad_()
            for t in (
                torch.randn(conv_dim, 4),
                torch.randn(conv_dim),
                torch.rand(dims.nheads),
                torch.rand(dims.nheads),
                torch.ones(dims.nheads),
                torch.ones(dims.d_inner),
                torch.randn(32, dims.d_inner, dtype=torch.bfloat16),  # as autocast casts the out-projection
            )
        )
    )
    zxbcdt = torch.randn(1, 64, dims.d_inner + conv_dim + dims.nheads, dtype=torch.bfloat16, requires_grad=True)
    reset = torch.zeros(1, 64, dtype=torch.bool)
    reset[:, 0] = reset[:, 30] = True
    gpu_mamba.mamba2_split_scan(zxbcdt, weights, dims, reset).float().sum().backward()


if __name__ == "__main__":
    sys.exit(main())

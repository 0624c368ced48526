"""Every Triton kernel launch of the GPU path compiles for Hopper (sm_90) and Ampere (sm_80), without a GPU.

The Triton interpreter that runs our kernels on CPU executes their Python bodies and never type-checks them the
way the compiler does: a kernel that rebound ``_`` inside an ``if`` with another type passed every CPU test and
then failed to compile on its first H200 launch, stopping training at the first dechunk. Triton's front end,
LLVM and its bundled ptxas need no GPU, so ``compile_for_gpu.py`` (a process without TRITON_INTERPRET) drives
the wrappers forward and backward and compiles each launch for real targets. mamba-ssm's kernels are compiled
through our wrappers too, when its Python sources are installed (CI builds them, see .ci/run).
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import missing

SCRIPT = Path(__file__).with_name("compile_for_gpu.py")
OWN = {
    "_tiles",
    "_carries",
    "_fixup",
    "_plug_back",
    "_routing_fwd_kernel",
    "_routing_bwd_kernel",
    "_conv_fwd",
    "_conv_bwd",
}
MAMBA = {
    "_chunk_scan_fwd_kernel",
    "_chunk_state_fwd_kernel",
    "_state_passing_fwd_kernel",
    "_layer_norm_fwd_1pass_kernel",
}


def compiler_env(tmp_path) -> dict[str, str]:
    """No interpreter, an empty kernel cache (a cached kernel would not prove this code compiles)."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.update(
        TRITON_CACHE_DIR=str(tmp_path / "triton-cache"),
        TRITON_DEFAULT_FP_FUSION="1",
        PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[1]), env.get("PYTHONPATH", "")]),
    )
    return env


def compile_all(tmp_path, *args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env=compiler_env(tmp_path),
        timeout=600,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_our_triton_kernels_compile_for_hopper_and_ampere(tmp_path):
    if importlib.util.find_spec("triton") is None:
        missing("triton", "is not installed")
    report = compile_all(tmp_path, "90", "80")
    assert report["failures"] == []
    assert set(report["compiled"]) == OWN
    assert all(targets == ["sm_80", "sm_90"] for targets in report["compiled"].values())


def test_mamba_ssm_kernels_compile_for_hopper_through_our_wrappers(tmp_path):
    for package, dist in (("triton", "triton"), ("mamba_ssm", "mamba-ssm")):
        if importlib.util.find_spec(package) is None:
            missing(dist, "is not installed (.ci/run builds mamba-ssm without its CUDA extension)")
    report = compile_all(tmp_path, "90", "--mamba-ssm")
    assert report["failures"] == []
    assert MAMBA <= set(report["compiled"])


def test_the_compile_check_fails_a_kernel_the_compiler_refuses(tmp_path):
    """The check itself: a kernel whose body only the interpreter accepts is reported, not passed over."""
    if importlib.util.find_spec("triton") is None:
        missing("triton", "is not installed")
    bad = tmp_path / "bad_kernel.py"
    bad.write_text(
        "import torch, triton, triton.language as tl\n"
        "@triton.jit\n"
        "def _rebinds(x_ptr, n, BLOCK: tl.constexpr):\n"
        "    offs = tl.arange(0, BLOCK)\n"
        "    _ = tl.load(x_ptr + offs, mask=offs < n, other=0.0)\n"
        "    if n > 1:\n"
        "        _ = offs\n"
        "    tl.store(x_ptr + offs, _ + 1.0, mask=offs < n)\n"
        "def launch():\n"
        "    _rebinds[(1,)](torch.zeros(16), 16, BLOCK=16)\n"
    )
    code = (
        f"import sys; sys.path[:0] = [{str(tmp_path)!r}, {str(SCRIPT.parent)!r}]\n"
        "import compile_for_gpu as c, bad_kernel\n"
        "c.drive_own_kernels = bad_kernel.launch\n"
        "sys.argv = ['compile_for_gpu.py', '90']\n"
        "sys.exit(c.main())\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=compiler_env(tmp_path), timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(report["failures"]) == 1 and "_rebinds" in report["failures"][0]

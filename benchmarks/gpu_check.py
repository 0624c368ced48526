"""The first hour on a GPU as one command: is every kernel there and right, does training run, how fast, how big.

1. Environment: GPU, torch / triton / mamba-ssm / causal-conv1d / flash-attn versions, and which implementation
   every op takes (``dispatch.describe``).
2. The GPU and Triton tests with HNET_TEST_REQUIRE set, so a missing package or GPU fails instead of skipping;
   any skip fails the check.
3. A 50-step bf16 smoke pretraining of the tiny and the paper 1-stage configs, padded and packed, through the
   CLI on the embedded human region (final bpb finite and below the 8-bit start, metrics.json written).
4. EMA dechunk and routing kernel benchmarks (B = 1 packed and B = 8, L up to 65,536; ``benchmarks/kernels.py``).
5. Training throughput (bases/s, MFU) and peak memory of ``dna/hnet_1stage`` at its shipped micro-batch, next to
   the saved-activation estimate the pretraining memory check makes (``benchmarks/memory_model.py``).
It writes ``benchmarks/results/gpu-<device>.md`` and exits non-zero if a check failed. No network is needed:
``benchmarks/gpu_check.sh WHEELS`` installs wheels built beforehand by ``benchmarks/gpu_wheels.sh``.

    bash benchmarks/gpu_check.sh /path/to/wheels                       # everything must be there
    bash benchmarks/gpu_check.sh /path/to/wheels --allow-missing causal-conv1d,flash-attn
    python benchmarks/gpu_check.py --device cpu --quick                 # the harness itself, on a CPU
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]  # runs from a checkout that is not pip-installed
PACKAGES = ("cuda", "triton", "mamba-ssm", "causal-conv1d", "flash-attn")


def versions() -> dict[str, str]:
    out = {"torch": torch.__version__, "python": sys.version.split()[0]}
    for dist in ("triton", "mamba-ssm", "causal-conv1d", "flash-attn", "lightning", "pysam"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def text_of(output: bytes | str | None) -> str:
    """A timed-out child's partial output: bytes even under text=True."""
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


def skipped_for(suite: ET.Element, allowed: set[str]) -> tuple[int, int]:
    """(skips blamed on a package the run allows to be missing, other skips); conftest.missing() starts a skip's
    message with the package's name."""
    ok = other = 0
    for case in suite.iter("testcase"):
        skip = case.find("skipped")
        if skip is None:
            continue
        message = skip.get("message", "")
        if any(re.search(rf"\b{re.escape(p)}: ", message) for p in allowed):
            ok += 1
        else:
            other += 1
    return ok, other


def run_tests(
    required: list[str], allowed: set[str], device: str, log_dir: Path, timeout: float
) -> tuple[bool, list[str]]:
    """The GPU-marked tests and our Triton kernel tests; (passed with no skip but those of an allowed-missing
    package, table rows)."""
    env = {
        **os.environ,
        "HNET_TEST_REQUIRE": ",".join(required),
        "PYTHONPATH": f"{REPO}:{os.environ.get('PYTHONPATH', '')}",
    }
    suites = {
        "Triton kernels": ["tests/test_kernels_triton.py"],
        "GPU-marked": ["-m", "gpu", "tests/test_kernels_gpu.py", "tests/test_tasks_protocol.py"],
    }
    if device == "cpu":  # the harness on a CPU: our Triton kernels under the interpreter, GPU tests skip
        suites = {"Triton kernels (interpreter)": ["tests/test_kernels_triton.py", "-k", "launch or grid"]}
    ok, rows = True, []
    for name, args in suites.items():
        xml = log_dir / f"{re.sub(r'[^a-z]+', '-', name.lower())}.xml"
        t0 = time.perf_counter()
        cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "--timeout=600"]
        cmd += ["--durations=10", f"--junitxml={xml}", *args]
        try:
            proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
            print(proc.stdout[-6000:], proc.stderr[-3000:], sep="\n", flush=True)
            code = proc.returncode
        except subprocess.TimeoutExpired as e:
            print(f"{name}: timed out after {timeout:.0f} s", text_of(e.stdout)[-6000:], sep="\n", flush=True)
            code = None
        if code is None or not xml.is_file():
            ok = False
            rows.append(f"| {name} | | | | {time.perf_counter() - t0:.0f} s | FAIL (exit {code}) |")
            continue
        suite = ET.parse(xml).getroot()
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
        counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
        allowed_skips, other_skips = skipped_for(suite, allowed)
        good = code == 0 and other_skips == 0 and counts["tests"] > allowed_skips
        ok &= good or device == "cpu"
        rows.append(
            f"| {name} | {counts['tests']} | {counts['failures'] + counts['errors']} | {other_skips} | "
            f"{allowed_skips} | {time.perf_counter() - t0:.0f} s | {'pass' if good else 'FAIL'} |"
        )
    return ok, rows


def smoke_pretrain(
    config: str, layout: str, steps: int, device: str, work: Path, quick: bool, timeout: float
) -> tuple[bool, str]:
    from hnet_genomics.data import demo

    out = work / f"{config.replace('/', '_')}-{layout}"
    sets = [
        f"train.layout={layout}",
        f"train.val_every={steps}",
        "train.val_windows=16",
        "train.final_val_windows=32",
        "train.warmup_steps=10",
        f"train.checkpoint_every={steps}",
        "train.accumulate_grad_batches=1",
        f"train.accelerator={'gpu' if device != 'cpu' else 'cpu'}",
    ]
    if quick:
        sets += [
            "train.seq_len=256",
            "train.batch_size=2",
            "train.tokens_per_batch=null",
            "train.val_windows=2",
            "train.final_val_windows=2",
        ]
    cmd = [
        sys.executable,
        "-m",
        "hnet_genomics.cli",
        "pretrain",
        "--config",
        config,
        "--fasta",
        str(demo.HUMAN_FASTA),
        "--out",
        str(out),
        "--max-steps",
        str(steps),
        "--quiet",
    ]
    for s in sets:
        cmd += ["--set", s]
    t0 = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": f"{REPO}:{os.environ.get('PYTHONPATH', '')}"}
    try:
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=timeout)
        code, tail = proc.returncode, proc.stdout[-2000:] + "\n" + proc.stderr[-4000:]
    except subprocess.TimeoutExpired as e:
        code, tail = None, f"timed out after {timeout:.0f} s\n" + text_of(e.stderr)[-4000:]
    wall = time.perf_counter() - t0
    metrics_file = out / "metrics.json"
    if code != 0 or not metrics_file.is_file():
        print(tail, flush=True)
        return False, f"| {config} | {layout} | {steps} | failed (exit {code}) | | | | {wall:.0f} s |"
    m = json.loads(metrics_file.read_text())
    good = 0 < m["val_bpb"] < 8
    peak = m.get("peak_gpu_memory_gib")
    comp = " / ".join(f"{c:.2f}" for c in m["compression_ratios"]) or "-"
    return good, (
        f"| {config} | {layout} | {m['steps']} | {m['val_bpb']:.4f} | {comp} | {m['bases_per_second']:,.0f} | "
        f"{'n/a' if peak is None else f'{peak:.1f}'} | {wall:.0f} s |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument(
        "--allow-missing", default="", help=f"comma list of packages that may be absent (of {', '.join(PACKAGES[2:])})"
    )
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check the harness, not the GPU")
    parser.add_argument("--out", type=Path, help="report path (default benchmarks/results/gpu-<device>.md)")
    # A fresh machine compiles every autotuning config of mamba-ssm's Triton kernels on first use: on an H200
    # that took minutes per process (cached in ~/.triton/cache afterwards), hence the generous limits.
    parser.add_argument("--test-timeout", type=float, default=1200, help="seconds per test suite")
    parser.add_argument("--smoke-timeout", type=float, default=900, help="seconds per smoke pretraining")
    args = parser.parse_args()
    import kernels as kbench
    from memory_model import row as memory_row

    from hnet_genomics.atomic import write_text_atomic
    from hnet_genomics.kernels import dispatch

    device = torch.device(args.device)
    gpu = device.type == "cuda"
    if gpu and not torch.cuda.is_available():
        print("gpu_check: torch sees no CUDA device", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name(device) if gpu else kbench.cpu_name()
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower().replace("nvidia", "")).strip("-")
    out = args.out or REPO / "benchmarks" / "results" / f"gpu-{slug}.md"
    allowed = {p.strip() for p in args.allow_missing.split(",") if p.strip()}
    required = [p for p in PACKAGES if p not in allowed and (gpu or p in ("triton",))]
    sections, ok, t_start = [], True, time.perf_counter()

    def publish(verdict: str) -> None:
        """The report so far: a check cut short by a time limit still leaves what it measured."""
        minutes = (time.perf_counter() - t_start) / 60
        report = "\n".join(
            [
                f"# GPU check: {name}",
                "",
                f"Verdict: **{verdict}** in {minutes:.1f} minutes. Command: "
                f"`python benchmarks/gpu_check.py {' '.join(sys.argv[1:])}`.",
                "",
                *sections,
            ]
        )
        write_text_atomic(out, report)
        if verdict in ("PASS", "FAIL"):
            print(report)

    table = dispatch.describe(device)
    env = versions()
    print(json.dumps({"device": name, **env, "kernels": table}, indent=1), flush=True)
    sections += [
        "## Environment",
        "",
        f"{name}; " + ", ".join(f"{k} {v}" for k, v in env.items()) + ".",
        "",
        "| op | implementation |",
        "|---|---|",
        *[f"| {op} | {impl} |" for op, impl in table.items()],
        "",
        f"Required to load (HNET_TEST_REQUIRE): {', '.join(required)}; allowed missing: "
        f"{', '.join(sorted(allowed)) or 'none'}.",
        "",
    ]

    with tempfile.TemporaryDirectory(prefix="hnet-gpu-check-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        publish("incomplete")
        tests_ok, rows = run_tests(required, allowed, device.type, work, args.test_timeout)
        ok &= tests_ok
        sections += [
            "## Tests",
            "",
            "| suite | tests | failed | skipped | skipped (allowed missing) | time | verdict |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
        ]
        print(f"tests: {time.perf_counter() - t0:.0f} s", flush=True)
        publish("incomplete")

        smoke = []
        configs = ["dna/hnet_1stage_tiny", "dna/hnet_1stage"] if not args.quick else ["dna/hnet_1stage_tiny"]
        for config in configs:
            for layout in ("padded", "packed"):
                steps = args.steps if not args.quick else 3
                good, line = smoke_pretrain(config, layout, steps, args.device, work, args.quick, args.smoke_timeout)
                ok &= good
                smoke.append(line)
                print(line, flush=True)
        sections += [
            "## Smoke pretraining",
            "",
            f"{args.steps} optimizer steps, bf16-mixed on the GPU, one micro-batch per step, embedded human "
            "region; final bpb over 32 validation windows.",
            "",
            "| config | layout | steps | val bpb | compression | bases/s | peak GiB | wall |",
            "|---|---|---|---|---|---|---|---|",
            *smoke,
            "",
        ]
        publish("incomplete")

        reps = 20 if gpu else 1
        shapes = [(1, 8192), (1, 65536), (8, 8192), (8, 65536)] if gpu and not args.quick else [(1, 2048), (2, 1024)]
        d = 512 if gpu and not args.quick else 64
        ema = kbench.bench_ema(device, shapes, d, compressions=[3], reps=reps)
        routing = kbench.bench_routing(device, shapes, d, reps=reps)
        sections += [
            "## EMA dechunk",
            "",
            "Median ms; x bf16 on the GPU; B = 1 is a packed row (reset every "
            "1,024 bases). Speed-up against mamba_chunk_scan_combined + gather (forward / fwd+bwd).",
            "",
            "| B | L | M | D | implementation | forward ms | fwd+bwd ms | speed-up |",
            "|---|---|---|---|---|---|---|---|",
            *ema,
            "",
            "## Routing",
            "",
            "| B | L | D | implementation | forward ms | fwd+bwd ms | speed-up |",
            "|---|---|---|---|---|---|---|",
            *routing,
            "",
        ]
        publish("incomplete")

        config = "dna/hnet_1stage" if not args.quick else "dna/hnet_1stage_tiny"
        batch = 64 if not args.quick else 1
        train = kbench.bench_train(device, config, 1024, batch, steps=5 if gpu else 1)
        memory = memory_row(config, args.device, "bf16" if gpu else "fp32")
        sections += [
            "## Training step at the shipped micro-batch",
            "",
            "| config | L | batch | bases/s | MFU | peak GiB | compression |",
            "|---|---|---|---|---|---|---|",
            train,
            "",
            "Pretraining's memory estimate for the same config (saved activations measured on this device):",
            "",
            "| config | parameters | saved MiB per window | per-device batch (accumulation) | step GiB | "
            "windows that fit 80 GB |",
            "|---|---|---|---|---|---|",
            memory,
            "",
        ]

    publish("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

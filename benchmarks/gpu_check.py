"""Every GPU measurement as one command with a time budget: speed, memory, kernels, tests.

A GPU machine may be had for minutes only, and fresh (an empty Triton cache: the first process compiles and
autotunes for about three minutes), keeping only the files one command copies out. So the check runs its
sections in order of importance, each in its own process under its own time limit (a section that hangs or
compiles too long is stopped and the next one starts), skips what the overall ``--budget`` no longer leaves
time for, and rewrites its report, ``benchmarks/results/gpu-<device>.md``, after every section (also copied
to ``--copy-to``, the folder whose files are kept), so a check cut short still leaves everything it measured.

Sections (a GPU run; ``--quick`` runs each at toy size, which is how the harness is proven on a CPU):

1. environment: GPU, versions, which implementation each op takes (in this process, nothing compiled).
2. train-step: ``benchmarks/train_step.py``: the H-Net next to the FLOP- and parameter-matched Mamba-2 and the
   Transformer, one process, the shipped micro-batch, H-Net boundaries drawn at the target compression; compile
   time, bases/s, MFU, peak memory. First, so that its process pays the Triton compile for every later one
   (compiled kernels are cached on disk; ``gpu_check.sh`` also caches autotuning results).
3. pretrain: ``hnet-genomics pretrain --config dna/hnet_1stage`` for a few optimizer steps at its shipped split,
   end to end: steady-state and with-warm-up bases/s, peak memory against the memory check's estimate, the
   micro-batch the memory check chose, validation bpb.
4. plug-ins, when their script is in the checkout: ``benchmarks/conv.py`` (depthwise causal conv kernel) and
   ``benchmarks/launches.py`` (kernel launches and host syncs per step). Contract: ``python
   benchmarks/NAME.py --out FILE [--quick]`` writes a markdown report to FILE (its first line, the title, is
   dropped here) and exits 0.
5. tests: our Triton kernel tests, then the GPU-marked tests, with HNET_TEST_REQUIRE set (a missing package
   or GPU fails instead of skipping, except those ``--allow-missing`` names).
6. memory-model: ``benchmarks/memory_model.py`` on the GPU's kernels, the four models.
7. kernels: ``benchmarks/kernels.py``, EMA dechunk and routing.
8. pretrain-packed: the same short pretraining in the packed layout.

It exits 1 if a section failed, 2 on bad arguments. No network is needed: ``benchmarks/gpu_check.sh WHEELS``
installs wheels built beforehand by ``benchmarks/gpu_wheels.sh``.

    bash benchmarks/gpu_check.sh .whl --allow-missing causal-conv1d,flash-attn --copy-to "$OUT"
    python benchmarks/gpu_check.py --device cpu --quick --out /tmp/gpu-check-cpu.md    # the harness, on a CPU
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]  # runs from a checkout that is not pip-installed
PACKAGES = ("cuda", "triton", "mamba-ssm", "causal-conv1d", "flash-attn")
MIN_SECTION_SECONDS = 20  # a section is not started with less time than this left in the budget
KILL_GRACE_SECONDS = 10  # after SIGTERM at a section's limit, before SIGKILL


def versions() -> dict[str, str]:
    import torch

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


@dataclass
class Context:
    device: str  # "cuda" or "cpu"
    quick: bool
    work: Path  # scratch folder for the sections' outputs
    log: Path  # every child's output, appended
    required: list[str]
    allowed: set[str]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def gpu(self) -> bool:
        return self.device.startswith("cuda")


@dataclass
class Outcome:
    verdict: str  # "pass", "FAIL", "cut at its limit", "not run (...)"
    lines: list[str]  # the section's markdown, under its heading

    @property
    def failed(self) -> bool:
        return self.verdict not in ("pass",) and not self.verdict.startswith("not run")


@dataclass
class Section:
    name: str
    title: str
    limit: float  # seconds, on a GPU
    run: Callable[[Context, float], Outcome]
    script: str | None = None  # a plug-in: runs only when this file is in the checkout
    quick_limit: float = 300  # seconds, with --quick (a shared CPU is slow)


def run_child(cmd: list[str], ctx: Context, limit: float, name: str) -> tuple[int | None, str]:
    """Run ``cmd`` from the repository root in its own process group; at ``limit`` seconds SIGTERM the group,
    then SIGKILL. (exit status or None when stopped at the limit, its output); the output goes to the log."""
    started = time.perf_counter()
    with ctx.log.open("a") as log:
        log.write(f"\n===== {name}: {' '.join(cmd)} (limit {limit:.0f} s)\n")
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=ctx.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=limit)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=KILL_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        code = None
    text = text_of(out)
    with ctx.log.open("a") as log:
        log.write(text)
        log.write(f"\n===== {name}: exit {code} after {time.perf_counter() - started:.0f} s\n")
    print(text[-4000:], flush=True)
    return code, text


def verdict_of(code: int | None) -> str:
    return "pass" if code == 0 else "cut at its limit" if code is None else f"FAIL (exit {code})"


def embedded_report(path: Path) -> list[str]:
    """A report a section's script wrote, without its title, its headings one level down."""
    if not path.is_file():
        return ["(no report written)"]
    lines = path.read_text().splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return [("#" + line) if line.startswith("#") else line for line in lines]


def tail_block(text: str, lines: int = 15) -> list[str]:
    return ["```", *text.strip().splitlines()[-lines:], "```"]


# ---- sections -------------------------------------------------------------------------------------------------


def environment(ctx: Context, limit: float) -> Outcome:
    import torch

    from hnet_genomics.kernels import dispatch

    table = dispatch.describe(ctx.device)
    env = versions()
    print(json.dumps({**env, "kernels": table}, indent=1), flush=True)
    return Outcome(
        "pass",
        [
            ", ".join(f"{k} {v}" for k, v in env.items()) + f"; {os.cpu_count()} CPU cores.",
            "",
            "| op | implementation |",
            "|---|---|",
            *[f"| {op} | {impl} |" for op, impl in table.items()],
            "",
            f"Required to load (HNET_TEST_REQUIRE): {', '.join(ctx.required)}; allowed missing: "
            f"{', '.join(sorted(ctx.allowed)) or 'none'}. CUDA devices: "
            f"{torch.cuda.device_count() if torch.cuda.is_available() else 0}.",
        ],
    )


def train_step(ctx: Context, limit: float) -> Outcome:
    out = ctx.work / "train_step.md"
    cmd = [sys.executable, "benchmarks/train_step.py", "--device", ctx.device, "--out", str(out)]
    code, text = run_child(cmd + (["--quick"] if ctx.quick else []), ctx, limit, "train-step")
    lines = embedded_report(out)
    if code != 0:
        lines += ["", "Last output:", "", *tail_block(text)]
    return Outcome(verdict_of(code), lines)


PRETRAIN_HEADER = [
    "| config | layout | optimizer steps | micro-batch x accumulation (configured) | bases/s after warm-up "
    "| bases/s with warm-up | warm-up s | peak GiB | memory check's estimate GiB | compression | val bpb | wall s |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
]


def pretrain(ctx: Context, limit: float, layout: str = "padded") -> Outcome:
    from hnet_genomics.data import demo

    config = "dna/hnet_1stage_tiny" if ctx.quick else "dna/hnet_1stage"
    steps = 3 if ctx.quick else 12
    out = ctx.work / f"pretrain-{layout}"
    sets = [f"train.layout={layout}", f"train.val_every={steps}", f"train.checkpoint_every={steps}"]
    sets += ["train.warmup_steps=10", f"train.accelerator={'gpu' if ctx.gpu else 'cpu'}"]
    if ctx.quick:
        sets += ["train.seq_len=256", "train.batch_size=2", "train.tokens_per_batch=null"]
        sets += ["train.val_windows=2", "train.final_val_windows=2"]
    else:
        sets += ["train.val_windows=32", "train.final_val_windows=64"]
    cmd = [sys.executable, "-m", "hnet_genomics.cli", "pretrain", "--config", config, "--fasta", str(demo.HUMAN_FASTA)]
    cmd += ["--out", str(out), "--max-steps", str(steps), "--quiet"]
    for s in sets:
        cmd += ["--set", s]
    t0 = time.perf_counter()
    code, text = run_child(cmd, ctx, limit, f"pretrain-{layout}")
    wall = time.perf_counter() - t0
    metrics_file = out / "metrics.json"
    note = [
        f"`hnet-genomics pretrain --config {config} --max-steps {steps}` ({', '.join(sets)}) on the embedded "
        "human region: the config's shipped micro-batch and accumulation, unless the memory check lowered them; "
        "bases/s after the first 2 optimizer steps and with them (both without validation time); peak: the most "
        "allocated during training.",
        "",
    ]
    if code != 0 or not metrics_file.is_file():
        return Outcome(verdict_of(code), [*note, "Last output:", "", *tail_block(text)])
    m = json.loads(metrics_file.read_text())
    if layout == "padded":
        shutil.copyfile(metrics_file, ctx.work / "pretrain-metrics.json")
    memory = m.get("memory_check") or {}
    configured = memory.get("configured") or ["?", "?"]
    estimate = memory.get("estimated_step_bytes")

    def number(key: str, fmt: str) -> str:
        value = m.get(key)
        return "n/a" if value is None else format(value, fmt)

    row = (
        f"| {config} | {layout} | {m['steps']} | {m['micro_batch']} x {m['accumulate_grad_batches']} "
        f"({configured[0]} x {configured[1]}) | {number('bases_per_second', ',.0f')} | "
        f"{number('bases_per_second_with_warmup', ',.0f')} | {number('warmup_seconds', '.1f')} | "
        f"{number('peak_gpu_memory_gib', '.1f')} | {'n/a' if estimate is None else f'{estimate / 2**30:.1f}'} | "
        f"{' / '.join(f'{c:.2f}' for c in m['compression_ratios']) or '-'} | {m['val_bpb']:.4f} | {wall:.0f} |"
    )
    good = 0 < m["val_bpb"] < 8 and m.get("bases_per_second") is not None
    return Outcome("pass" if good else "FAIL (bpb or speed missing)", [*note, *PRETRAIN_HEADER, row])


def plug_in(script: str) -> Callable[[Context, float], Outcome]:
    def run(ctx: Context, limit: float) -> Outcome:
        out = ctx.work / f"{Path(script).stem}.md"
        cmd = [sys.executable, script, "--out", str(out)] + (["--quick"] if ctx.quick else [])
        code, text = run_child(cmd, ctx, limit, Path(script).stem)
        lines = embedded_report(out)
        if code != 0:
            lines += ["", "Last output:", "", *tail_block(text)]
        return Outcome(verdict_of(code), lines)

    return run


def tests(ctx: Context, limit: float) -> Outcome:
    """Our Triton kernels' tests, then the GPU-marked ones; any skip not blamed on an allowed-missing package
    fails the section."""
    suites = {
        "Triton kernels": ["tests/test_kernels_triton.py"],
        "GPU-marked": ["-m", "gpu", "tests/test_kernels_gpu.py", "tests/test_tasks_protocol.py"],
    }
    if not ctx.gpu:  # the harness on a CPU: our Triton kernels under the interpreter, GPU tests skip
        suites = {"Triton kernels (interpreter)": ["tests/test_kernels_triton.py", "-k", "launch or grid"]}
    env = {**ctx.env, "HNET_TEST_REQUIRE": ",".join(ctx.required)}
    deadline = time.perf_counter() + limit
    rows, verdict = [], "pass"
    for name, args in suites.items():
        left = deadline - time.perf_counter()
        if left < MIN_SECTION_SECONDS:
            rows.append(f"| {name} | | | | | | not run (the section's {limit:.0f} s were spent) |")
            verdict = "cut at its limit"
            continue
        xml = ctx.work / f"{re.sub(r'[^a-z]+', '-', name.lower())}.xml"
        t0 = time.perf_counter()
        cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "--durations=10"]
        cmd += [f"--junitxml={xml}", *args]
        code, _ = run_child(cmd, dataclasses.replace(ctx, env=env), left, f"tests: {name}")
        seconds = time.perf_counter() - t0
        if code is None or not xml.is_file():
            rows.append(f"| {name} | | | | | {seconds:.0f} s | {verdict_of(code)} |")
            verdict = verdict_of(code) if verdict == "pass" else verdict
            continue
        root = ET.parse(xml).getroot()
        suite = root if root.tag == "testsuite" else root.find("testsuite")
        assert suite is not None
        counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
        allowed_skips, other_skips = skipped_for(suite, ctx.allowed)
        good = code == 0 and (other_skips == 0 or not ctx.gpu) and counts["tests"] > allowed_skips
        rows.append(
            f"| {name} | {counts['tests']} | {counts['failures'] + counts['errors']} | {other_skips} | "
            f"{allowed_skips} | {seconds:.0f} s | {'pass' if good else 'FAIL'} |"
        )
        if not good and verdict == "pass":
            verdict = "FAIL"
    return Outcome(
        verdict,
        [
            "| suite | tests | failed | skipped | skipped (allowed missing) | time | verdict |",
            "|---|---|---|---|---|---|---|",
            *rows,
        ],
    )


def memory_model(ctx: Context, limit: float) -> Outcome:
    out = ctx.work / "memory.md"
    configs = (
        ["dna/hnet_1stage_tiny", "dna/mamba2_tiny"]
        if ctx.quick
        else ["dna/hnet_1stage", "dna/mamba2_flops", "dna/mamba2", "dna/transformer"]
    )
    cmd = [sys.executable, "benchmarks/memory_model.py", "--device", ctx.device, "--out", str(out), "--configs"]
    code, text = run_child([*cmd, *configs, "--precision", "bf16" if ctx.gpu else "fp32"], ctx, limit, "memory")
    lines = embedded_report(out)
    if code != 0:
        lines += ["", "Last output:", "", *tail_block(text)]
    return Outcome(verdict_of(code), lines)


def kernels(ctx: Context, limit: float) -> Outcome:
    out = ctx.work / "kernels.md"
    cmd = [sys.executable, "benchmarks/kernels.py", "--out", str(out)] + (["--quick"] if ctx.quick else [])
    code, text = run_child(cmd, ctx, limit, "kernels")
    lines = embedded_report(out)
    if code != 0:
        lines += ["", "Last output:", "", *tail_block(text)]
    return Outcome(verdict_of(code), lines)


SECTIONS = [
    Section("environment", "Environment", 30, environment),
    Section("train-step", "Training step per model at the target compression", 270, train_step),
    Section("pretrain", "Short pretraining, end to end", 110, pretrain),
    Section("conv", "Depthwise causal conv kernel", 45, plug_in("benchmarks/conv.py"), "benchmarks/conv.py"),
    Section(
        "launches", "Launches and host syncs per step", 45, plug_in("benchmarks/launches.py"), "benchmarks/launches.py"
    ),
    Section("tests", "Tests", 120, tests),
    Section("memory-model", "Memory model on this device's kernels", 60, memory_model),
    Section("kernels", "EMA dechunk and routing kernels", 60, kernels),
    Section(
        "pretrain-packed", "Short pretraining, packed layout", 60, lambda ctx, limit: pretrain(ctx, limit, "packed")
    ),
]


def device_slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower().replace("nvidia", "")).strip("-")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument(
        "--allow-missing", default="", help=f"comma list of packages that may be absent (of {', '.join(PACKAGES[2:])})"
    )
    parser.add_argument("--quick", action="store_true", help="every section at toy size: check the harness")
    parser.add_argument("--budget", type=float, default=450, help="seconds for the whole check (default 450)")
    parser.add_argument(
        "--only", help="comma list of sections to run (default all): " + ", ".join(s.name for s in SECTIONS)
    )
    parser.add_argument("--out", type=Path, help="report path (default benchmarks/results/gpu-<device>.md)")
    parser.add_argument("--copy-to", type=Path, help="also copy the report, the log and pretrain's metrics here")
    args = parser.parse_args(argv)
    t_start = time.perf_counter()
    only = {s.strip() for s in (args.only or "").split(",") if s.strip()}
    unknown = only - {s.name for s in SECTIONS}
    allowed = {p.strip() for p in args.allow_missing.split(",") if p.strip()}
    if unknown or not allowed <= set(PACKAGES[2:]) or args.budget <= 0:
        what = unknown or (allowed - set(PACKAGES[2:])) or {str(args.budget)}
        print(f"gpu_check: unknown section, package or budget: {', '.join(sorted(what))}", file=sys.stderr)
        return 2
    import torch
    from hardware import cpu_name

    from hnet_genomics.atomic import write_text_atomic

    gpu = args.device == "cuda"
    if gpu and not torch.cuda.is_available():
        print("gpu_check: torch sees no CUDA device", file=sys.stderr)
        return 2
    if gpu:
        props = torch.cuda.get_device_properties(0)
        name = f"{torch.cuda.get_device_name(0)} {props.total_memory / 1e9:.0f} GB"
    else:
        name = cpu_name()
    slug = device_slug(torch.cuda.get_device_name(0) if gpu else "cpu")
    out = args.out or REPO / "benchmarks" / "results" / f"gpu-{slug}.md"
    required = [p for p in PACKAGES if p not in allowed and (gpu or p == "triton")]
    work = Path(tempfile.mkdtemp(prefix="hnet-gpu-check-"))
    env = {**os.environ, "PYTHONPATH": f"{REPO}:{os.environ.get('PYTHONPATH', '')}", "PYTHONUNBUFFERED": "1"}
    ctx = Context(args.device, args.quick, work, work / "gpu_check.log", required, allowed, env)
    ctx.log.write_text("")
    parts: list[str] = []
    summary: list[str] = []
    failed = False

    def publish(verdict: str) -> None:
        """The report so far (a check cut short still leaves what it measured), here and in --copy-to."""
        minutes = (time.perf_counter() - t_start) / 60
        command = "python benchmarks/gpu_check.py " + " ".join(argv if argv is not None else sys.argv[1:])
        report = "\n".join(
            [
                f"# GPU check: {name}",
                "",
                f"Verdict: **{verdict}** after {minutes:.1f} minutes of a {args.budget:.0f} s budget. "
                f"Command: `{command.strip()}`."
                + (" Toy sizes (`--quick`): the harness, not a measurement." if args.quick else ""),
                "",
                "| section | verdict | seconds |",
                "|---|---|---|",
                *summary,
                "",
                *parts,
            ]
        )
        write_text_atomic(out, report + "\n")
        if args.copy_to:
            args.copy_to.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(out, args.copy_to / out.name)
            shutil.copyfile(ctx.log, args.copy_to / "gpu_check.log")
            metrics = work / "pretrain-metrics.json"
            if metrics.is_file():
                shutil.copyfile(metrics, args.copy_to / "pretrain-metrics.json")

    for section in SECTIONS:
        if only and section.name not in only:
            continue
        left = args.budget - (time.perf_counter() - t_start)
        own = section.quick_limit if args.quick else section.limit
        if section.script and not (REPO / section.script).is_file():
            outcome = Outcome(f"not run ({section.script} is not in this checkout)", [])
            seconds = 0.0
        elif left < MIN_SECTION_SECONDS:
            outcome = Outcome(f"not run ({left:.0f} s of the budget left)", [])
            seconds = 0.0
        else:
            limit = min(own, left)
            print(f"\n=== {section.name}: up to {limit:.0f} s ({left:.0f} s of the budget left)", flush=True)
            t0 = time.perf_counter()
            try:
                outcome = section.run(ctx, limit)
            except Exception as e:  # a harness bug in one section must not cost the others
                outcome = Outcome(f"FAIL ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})", [])
            seconds = time.perf_counter() - t0
        failed |= outcome.failed
        summary.append(f"| {section.name} | {outcome.verdict} | {seconds:.0f} |")
        if outcome.lines:
            parts += [
                f"## {section.title}",
                "",
                f"Verdict: {outcome.verdict} ({seconds:.0f} s).",
                "",
                *outcome.lines,
                "",
            ]
        publish("incomplete")
    publish("FAIL" if failed else "PASS")
    print(out.read_text(), flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""The one GPU command's harness, proven on a CPU: sections in order, each under its own limit and the budget,
the report rewritten after every section and copied out; the training-step benchmark it runs first."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import gpu_check  # noqa: E402  (a script folder, not a package)
from train_step import mfu_cell  # noqa: E402

PLUG_IN = """
import argparse, pathlib
parser = argparse.ArgumentParser()
parser.add_argument("--out", type=pathlib.Path)
parser.add_argument("--quick", action="store_true")
args = parser.parse_args()
args.out.write_text("# Conv kernel\\n\\n| kernel | ms |\\n|---|---|\\n| triton | 1.0 |\\n")
"""


def table_rows(markdown: str) -> list[list[str]]:
    """The cells of every markdown table row."""
    return [[c.strip() for c in line.strip("|").split("|")] for line in markdown.splitlines() if line.startswith("| ")]


def test_sections_run_in_order_under_their_limits_and_the_report_follows_each_one(tmp_path, monkeypatch):
    out, copy = tmp_path / "report.md", tmp_path / "copied"
    plug_in = tmp_path / "conv.py"
    plug_in.write_text(PLUG_IN)
    seen_before_slow = []

    def ok(ctx, limit):
        return gpu_check.Outcome("pass", ["first section's table"])

    def slow(ctx, limit):
        seen_before_slow.append(out.read_text())
        code, _ = gpu_check.run_child(
            [sys.executable, "-c", "import time; print('slow started', flush=True); time.sleep(120)"],
            ctx,
            limit,
            "slow",
        )
        return gpu_check.Outcome(gpu_check.verdict_of(code), ["what the slow section had"])

    def broken(ctx, limit):
        raise RuntimeError("a harness bug")

    monkeypatch.setattr(gpu_check, "MIN_SECTION_SECONDS", 2)
    monkeypatch.setattr(gpu_check, "KILL_GRACE_SECONDS", 2)
    monkeypatch.setattr(
        gpu_check,
        "SECTIONS",
        [
            gpu_check.Section("ok", "OK", 30, ok),
            gpu_check.Section("absent", "Absent", 30, ok, script=str(tmp_path / "launches.py")),
            gpu_check.Section("conv", "Conv", 30, gpu_check.plug_in(str(plug_in)), script=str(plug_in)),
            gpu_check.Section("broken", "Broken", 30, broken),
            gpu_check.Section("slow", "Slow", 60, slow),  # stopped by the budget, well before its own limit
            gpu_check.Section("late", "Late", 30, ok),
        ],
    )
    code = gpu_check.main(["--device", "cpu", "--budget", "12", "--out", str(out), "--copy-to", str(copy)])
    report = out.read_text()
    assert code == 1 and "Verdict: **FAIL**" in report
    verdicts = {cells[0]: cells[1] for cells in table_rows(report) if len(cells) == 3}
    assert verdicts["ok"] == "pass" and verdicts["conv"] == "pass"
    assert verdicts["absent"].startswith("not run (") and "launches.py is not in this checkout" in verdicts["absent"]
    assert verdicts["broken"] == "FAIL (RuntimeError: a harness bug)"
    assert verdicts["slow"] == "cut at its limit" and verdicts["late"].startswith("not run (")
    assert "| triton | 1.0 |" in report and "# Conv kernel" not in report  # the plug-in's report, minus its title
    assert "first section's table" in seen_before_slow[0]  # written before the next section started
    assert (copy / "report.md").read_text() == report
    assert "slow started" in (copy / "gpu_check.log").read_text()


def test_bad_arguments_are_one_line_and_exit_2(capsys):
    assert gpu_check.main(["--device", "cpu", "--only", "nope"]) == 2
    assert gpu_check.main(["--device", "cpu", "--allow-missing", "numpy"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("gpu_check: ") for line in err)


def test_mfu_is_refused_when_compression_is_more_than_a_fifth_off_target():
    assert mfu_cell([3.0], [3.0], 300e12, 1000e12, gpu=True) == "30.0 %"
    assert mfu_cell([2.5], [3.0], 300e12, 1000e12, gpu=True) == "30.0 %"  # 17 % off: counted
    assert mfu_cell([3.7], [3.0], 300e12, 1000e12, gpu=True).startswith("refused: compression +23%")
    assert mfu_cell([3.0, 1.0], [3.0, 2.0], 1e12, 1e15, gpu=True).startswith("refused")
    assert mfu_cell([], [], 300e12, 1000e12, gpu=True) == "30.0 %"  # isotropic
    assert mfu_cell([3.0], [3.0], 1e9, None, gpu=False) == "n/a (CPU)"


@pytest.mark.slow
def test_training_step_benchmark_on_a_cpu_times_the_h_net_at_its_target_compression(tmp_path):
    out = tmp_path / "train_step.md"
    cmd = [sys.executable, str(BENCHMARKS / "train_step.py"), "--device", "cpu", "--quick", "--out", str(out)]
    run = subprocess.run(
        [*cmd, "--configs", "dna/hnet_1stage_tiny", "dna/mamba2_tiny_flops"], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-3000:]
    rows = {cells[0]: cells for cells in table_rows(out.read_text()) if cells[0].startswith("dna/")}
    hnet = rows["dna/hnet_1stage_tiny"]
    measured = float(hnet[3].split(" (")[0])
    assert abs(measured / 3 - 1) < 0.2 and hnet[9] == "n/a (CPU)"
    assert float(hnet[7].replace(",", "")) > 0 and rows["dna/mamba2_tiny_flops"][3] == "- (isotropic)"
    assert "H-Net 1-stage / FLOP-matched Mamba-2 bases/s" in out.read_text()
    bad = subprocess.run([*cmd, "--configs", "dna/nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_the_gpu_command_runs_end_to_end_on_a_cpu_at_toy_size(tmp_path):
    """The real sections (a short pretraining through the CLI, our Triton kernel tests under the interpreter),
    in a subprocess as on the GPU machine."""
    out, copy = tmp_path / "gpu-cpu.md", tmp_path / "copied"
    cmd = [sys.executable, str(BENCHMARKS / "gpu_check.py"), "--device", "cpu", "--quick"]
    cmd += ["--only", "environment,pretrain,tests", "--out", str(out), "--copy-to", str(copy)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = out.read_text()
    assert "Verdict: **PASS**" in report
    assert "| dna/hnet_1stage_tiny | padded | 3 | 2 x 1 (2 x 1) |" in report
    assert "| Triton kernels (interpreter) |" in report
    assert {p.name for p in copy.iterdir()} == {"gpu-cpu.md", "gpu_check.log", "pretrain-metrics.json"}

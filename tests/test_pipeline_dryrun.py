"""`snakemake -n` over every target: the DAG resolves, every job calls the CLI, bad configs stop early."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
TARGETS = ("pretrain_hg38", "finetune", "boundaries", "compare_baselines", "benchmark", "all")

pytestmark = pytest.mark.skipif(shutil.which("hnet-genomics") is None, reason="package not installed")


def dry_run(workdir: Path, *args: str, snakefile: Path = REPO / "Snakefile") -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SNAKEMAKE, "-n", "-p", "--cores", "2", "-s", str(snakefile), "--directory", str(workdir), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def planned_jobs(output: str) -> dict[str, int]:
    table = output.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def shell_commands(output: str) -> list[str]:
    return [c for c in re.findall(r"^Shell command: (.*)$", output, re.M) if c != "None"]  # None: target rules


EXPECTED = {
    ("demo", "pretrain_hg38"): {
        "prepare_genome",
        "chrom_sizes",
        "split_intervals",
        "pretrain",
        "evaluate",
        "markov_reference",
        "export_boundaries",
        "boundary_enrichment",
        "report",
    },
    ("hg38", "pretrain_hg38"): {
        "fetch_hg38",
        "chrom_sizes",
        "split_intervals",
        "pretrain",
        "evaluate",
        "markov_reference",
        "export_boundaries",
        "report",
    },
    ("demo", "finetune"): {"prepare_genome", "split_intervals", "pretrain", "finetune_task", "make_demo_task"},
    ("demo", "boundaries"): {"prepare_genome", "split_intervals", "pretrain", "custom_boundaries"},
    ("demo", "benchmark"): {
        "prepare_genome",
        "split_intervals",
        "pretrain",
        "fetch_benchmark_task",
        "benchmark_task",
        "benchmark_table",
    },
    ("demo", "compare_baselines"): {
        "prepare_genome",
        "split_intervals",
        "pretrain",
        "evaluate",
        "markov_reference",
        "compare",
    },
}


@pytest.fixture(scope="module")
def plans(tmp_path_factory) -> dict[tuple[str, str], subprocess.CompletedProcess]:
    """Dry runs of every target for both genomes, started side by side (each is mostly interpreter start-up)."""
    cases = [(genome, target) for genome in ("demo", "hg38") for target in TARGETS]
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = [
            pool.submit(dry_run, tmp_path_factory.mktemp(f"{g}_{t}"), t, "--config", f"genome={g}") for g, t in cases
        ]
        return {case: run.result() for case, run in zip(cases, runs)}


@pytest.mark.parametrize("genome", ["demo", "hg38"])
@pytest.mark.parametrize("target", TARGETS)
def test_every_target_dry_runs_and_only_calls_the_cli(plans, genome, target):
    result = plans[genome, target]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    jobs = planned_jobs(result.stdout)
    assert set(EXPECTED.get((genome, target), ())) <= set(jobs)
    if target in ("compare_baselines", "all"):
        # H-Net 1-stage, 2-stage, parameter- and FLOP-matched Mamba-2 and Transformer, seeds 0 and 1
        assert jobs["pretrain"] == 12
    if genome == "hg38":
        assert "prepare_genome" not in jobs and "boundary_enrichment" not in jobs
    commands = shell_commands(result.stdout)
    assert commands
    for command in commands:
        program = re.sub(r"^(mkdir -p \S+ && )?(OMP_NUM_THREADS=\d+ )?", "", command)
        assert program.startswith("hnet-genomics "), command


def test_finetune_job_gets_the_configured_recipe(plans):
    commands = shell_commands(plans["demo", "finetune"].stdout)
    command = next(c for c in commands if " finetune " in c and "oct4_vs_mafk" in c)
    assert "--epochs 2 --seeds 3 --lr 0.001 --pooling mean --rc-tta --baseline kmer" in command


def test_demo_tasks_are_built_by_the_cli_and_stranded_ones_skip_rc_averaging(plans):
    commands = shell_commands(plans["demo", "finetune"].stdout)
    made = [c for c in commands if c.startswith("hnet-genomics make-task ")]
    assert sorted(c.split()[2] for c in made) == ["exon-starts", "species"]
    tuned = {
        task: next(c for c in commands if f"--out results/demo/finetune/{task} " in c)
        for task in ("exon_starts", "species")
    }
    assert "--rc-tta" not in tuned["exon_starts"] and "--rc-tta" in tuned["species"]
    assert "--train results/demo/tasks/demo-exon-starts/train.csv.gz" in tuned["exon_starts"]


def test_benchmark_fetches_and_runs_one_job_per_task_then_writes_one_table(plans):
    result = plans["demo", "benchmark"]
    jobs = planned_jobs(result.stdout)
    assert jobs["fetch_benchmark_task"] == jobs["benchmark_task"] == 9 and jobs["benchmark_table"] == 1
    commands = shell_commands(result.stdout)
    fetch = next(c for c in commands if "benchmark-fetch" in c and "--tasks human_enhancers_cohn " in c)
    assert "--suite genomic-benchmarks --data results/demo/benchmark/data/genomic-benchmarks" in fetch
    task = next(c for c in commands if " benchmark --suite" in c and "--tasks human_enhancers_cohn " in c)
    assert "--model results/demo/pretrain/hnet_1stage/model --out results/demo/benchmark/genomic-benchmarks" in task
    assert "--seeds 3 --epochs 3 --lr 0.0005 --batch-size 32 --rc-tta --no-table" in task
    table = next(c for c in commands if "benchmark-table" in c)
    assert "--suite genomic-benchmarks --runs results/demo/benchmark/genomic-benchmarks" in table


def test_benchmark_reads_a_given_suite_folder_and_forwards_the_settings(tmp_path):
    for task in ("H3", "promoter_all"):
        (tmp_path / "nt" / task).mkdir(parents=True)
    path = tmp_path / "override.yaml"
    settings = {"suite": "nucleotide-transformer", "data": str(tmp_path / "nt"), "tasks": ["promoter_all", "H3"]}
    path.write_text(yaml.safe_dump({"benchmark": {**settings, "max_train": 200, "kmer_baseline": False}}))
    result = dry_run(tmp_path, "benchmark", "--configfile", str(path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    jobs = planned_jobs(result.stdout)
    assert "fetch_benchmark_task" not in jobs and jobs["benchmark_task"] == 2
    commands = [c for c in shell_commands(result.stdout) if " benchmark --suite nucleotide-transformer" in c]
    assert sorted(re.search(r"--tasks (\S+)", c)[1] for c in commands) == ["H3", "promoter_all"]
    assert all(f"--data {tmp_path / 'nt'} " in c and "--max-train 200 --rc-tta --no-kmer" in c for c in commands)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"tasks": ["H3"]}, "pipeline config key 'benchmark.tasks': 'H3' is not a task of genomic-benchmarks"),
        ({"suite": "gue"}, "pipeline config key 'benchmark.suite': unknown suite 'gue'"),
        ({"data": "nowhere"}, "pipeline config key 'benchmark.data': no such file or directory: nowhere"),
        ({"seeds": 0}, "pipeline config key 'benchmark.seeds': 0 is less than the minimum of 1"),
    ],
)
def test_bad_benchmark_settings_are_named(tmp_path, override, message):
    path = tmp_path / "override.yaml"
    path.write_text(yaml.safe_dump({"benchmark": override}))
    result = dry_run(tmp_path, "benchmark", "--configfile", str(path))
    assert result.returncode != 0
    assert message in result.stdout


def test_comparison_trains_every_run_per_seed_and_reuses_the_main_run_for_seed_0(plans):
    commands = shell_commands(plans["demo", "compare_baselines"].stdout)
    pretrains = [c for c in commands if " pretrain " in c]
    seeded = [c for c in pretrains if "--out results/demo/pretrain/mamba2_flops-seed1 " in c]
    assert len(seeded) == 1 and "--config dna/mamba2_tiny_flops" in seeded[0] and "--set train.seed=1" in seeded[0]
    plain = [c for c in pretrains if "--out results/demo/pretrain/hnet_1stage " in c]
    assert len(plain) == 1 and "train.seed" not in plain[0]
    compare = next(c for c in commands if c.startswith("hnet-genomics compare"))
    assert (
        "hnet_1stage=results/demo/pretrain/hnet_1stage hnet_1stage=results/demo/pretrain/hnet_1stage-seed1" in compare
    )
    assert "--test " in compare and "transformer_flops=results/demo/eval/transformer_flops-seed1.test.json" in compare
    assert "--reference hnet_1stage" in compare


def test_demo_genome_uses_the_embedded_region_and_the_tiny_budget(plans):
    commands = "\n".join(shell_commands(plans["demo", "pretrain_hg38"].stdout))
    assert "hnet-genomics data prepare --demo human --out results/demo/genome/genome.fa.gz" in commands
    assert "--config dna/hnet_1stage_tiny" in commands
    assert "--max-steps 500 --seq-len 1024 --batch-size 8 --set train.warmup_steps=50" in commands
    assert "--annotation " in commands and "human_chr6p21_hla.exons.bed" in commands


def test_hg38_switches_to_the_download_and_the_paper_model(tmp_path):
    result = dry_run(tmp_path, "pretrain_hg38", "--config", "genome=hg38", "hg38_source=basenji")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    commands = "\n".join(shell_commands(result.stdout))
    assert "hnet-genomics data fetch-hg38 --dest results/hg38/genome --source basenji" in commands
    assert "--intervals results/hg38/genome/sequences_human.bed" in commands
    assert "hnet-genomics pretrain --config dna/hnet_1stage " in commands
    assert "--max-steps" not in commands  # the paper budget lives in the model config
    assert "hg38_loci.bed" in commands
    assert re.search(r"rule pretrain:.*?resources:[^\n]*gpu=1", result.stdout, re.S)


def test_command_line_overrides_reach_the_jobs(tmp_path):
    out = dry_run(
        tmp_path, "pretrain_hg38", "--config", "max_steps=20", "seq_len=256", "main_model=mamba2", "markov_order=4"
    ).stdout
    commands = "\n".join(shell_commands(out))
    assert "--config dna/mamba2_tiny" in commands and "--max-steps 20 --seq-len 256 --batch-size 8" in commands
    assert "--order 4 " in commands


def test_profiles_parse_and_plan_the_workflow(tmp_path):
    result = dry_run(tmp_path, "pretrain_hg38", "--profile", str(REPO / "pipelines/profiles/workstation"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    pytest.importorskip("snakemake_executor_plugin_slurm")
    result = dry_run(
        tmp_path, "pretrain_hg38", "--profile", str(REPO / "pipelines/profiles/slurm"), "--config", "genome=hg38"
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["genome=missing/genome.fa"], "pipeline config key 'genome': no such file or directory: missing/genome.fa"),
        (["max_step=20"], "pipeline config key 'max_step': unknown key"),
        (["main_model=hyena"], "pipeline config key 'main_model': 'hyena' is not a run in models"),
        (["seq_len=-5"], "pipeline config key 'seq_len': -5 is less than the minimum of 1"),
        (["annotation=nowhere.bed"], "pipeline config key 'annotation': no such file or directory"),
        (["hg38_source=ensembl"], "pipeline config key 'hg38_source'"),
    ],
)
def test_bad_config_stops_before_any_job_naming_the_key(tmp_path, args, message):
    result = dry_run(tmp_path, "pretrain_hg38", "--config", *args)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_bad_model_config_is_reported_with_its_run_name(tmp_path):
    override = tmp_path / "override.yaml"
    override.write_text(yaml.safe_dump({"models": {"mine": "dna/no_such_model"}, "main_model": "mine"}))
    result = dry_run(tmp_path, "pretrain_hg38", "--configfile", str(override))
    assert result.returncode != 0
    assert "pipeline config key 'models.mine': no shipped config named 'dna/no_such_model'" in result.stdout


FINETUNE_DEFAULTS = yaml.safe_load((REPO / "pipelines/config.yaml").read_text())["finetune"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"compare": {"seeds": [0, 0], "reference": "main"}}, "pipeline config key 'compare.seeds'"),
        (
            {"compare": {"seeds": [0], "reference": "hyena"}},
            "pipeline config key 'compare.reference': 'hyena' is not a run",
        ),
        (
            {"finetune": {**FINETUNE_DEFAULTS, "lr": -1}},
            "pipeline config key 'finetune.lr': -1 is less than or equal to the minimum of 0",
        ),
        ({"boundaries": {"shards": 0}}, "pipeline config key 'boundaries.shards': 0 is less than the minimum of 1"),
    ],
)
def test_bad_compare_finetune_and_boundaries_settings_are_named(tmp_path, override, message):
    path = tmp_path / "override.yaml"
    path.write_text(yaml.safe_dump(override))
    result = dry_run(tmp_path, "compare_baselines", "--configfile", str(path))
    assert result.returncode != 0
    assert message in result.stdout


def test_missing_key_in_the_pipeline_config_is_named(tmp_path):
    workflow = tmp_path / "workflow"
    shutil.copytree(REPO / "pipelines", workflow / "pipelines")
    shutil.copy(REPO / "Snakefile", workflow / "Snakefile")
    config = yaml.safe_load((workflow / "pipelines/config.yaml").read_text())
    del config["presets"]["demo"]["annotation"]
    (workflow / "pipelines/config.yaml").write_text(yaml.safe_dump(config))
    result = dry_run(tmp_path, "pretrain_hg38", snakefile=workflow / "Snakefile")
    assert result.returncode != 0
    assert "pipeline config key 'presets.demo.annotation': missing" in result.stdout


def test_sharded_boundaries_plan_one_export_job_per_shard_and_one_merge(tmp_path):
    path = tmp_path / "override.yaml"
    path.write_text(yaml.safe_dump({"boundaries": {"shards": 3}}))  # the rest of the section keeps its defaults
    result = dry_run(tmp_path, "boundaries", "--configfile", str(path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    jobs = planned_jobs(result.stdout)
    assert jobs["custom_boundaries_shard"] == 3 and jobs["custom_boundaries"] == 1
    commands = shell_commands(result.stdout)
    shards = sorted(re.search(r"--shard (\S+) --formats bed,bedgraph", c)[1] for c in commands if "--shard " in c)
    assert shards == ["1/3", "2/3", "3/3"]
    merge = [c for c in commands if "merge-tracks" in c]
    assert len(merge) == 1 and all(f"boundaries/custom.shards/{k}/custom" in merge[0] for k in (1, 2, 3))
    assert "--out results/demo/boundaries/custom/custom" in merge[0]


def test_paths_with_spaces_reach_every_job_as_one_argument(tmp_path):
    """Shell rules quote every path: a genome, annotation or working folder with a space stays one argument."""
    import shlex

    folder = tmp_path / "my genomes"
    folder.mkdir()
    genome = folder / "my genome.fa"
    genome.write_text(">chr1\nACGT\n")
    annotation = folder / "exons file.bed"
    annotation.write_text("chr1\t0\t2\n")
    path = tmp_path / "override.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "genome": str(genome),
                "annotation": str(annotation),
                "pretrain_set": ["train.lr=1e-3", "data.test_fraction=0.2"],
                "boundaries": {"shards": 2},
            }
        )
    )
    result = dry_run(tmp_path, "all", "--configfile", str(path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    commands = shell_commands(result.stdout)
    prepare = next(shlex.split(c) for c in commands if " data prepare " in c and str(genome) in c)
    assert prepare[prepare.index("--fasta") + 1] == str(genome)
    enrichment = next(shlex.split(c) for c in commands if " enrichment " in c)
    assert enrichment[enrichment.index("--annotation") + 1] == str(annotation)
    for command in commands:
        words = shlex.split(command.split(" > ")[0])
        assert not any(w in ("genome.fa", "genomes/my", "file.bed") or w.startswith("genome.fa") for w in words), (
            command
        )


def test_custom_finetune_tasks_in_both_documented_forms_plan_their_jobs(tmp_path):
    """`{train:, test:}` and `{benchmark:}` tasks (mappings) beside the built-in ones, as pipelines/config.yaml
    documents them."""
    (tmp_path / "train.csv").write_text("sequence,label\nACGT,0\nTTGA,1\n")
    (tmp_path / "test.csv").write_text("sequence,label\nACGA,0\nTTGC,1\n")
    for split in ("train", "test"):
        (tmp_path / "gb" / split / "a").mkdir(parents=True)
    tasks = {
        "mine": {"train": str(tmp_path / "train.csv"), "test": str(tmp_path / "test.csv"), "stranded": True},
        "bench": {"benchmark": str(tmp_path / "gb")},
        "oct4_vs_mafk": "demo-tfbs",
    }
    path = tmp_path / "override.yaml"
    path.write_text(yaml.safe_dump({"finetune": {**FINETUNE_DEFAULTS, "tasks": tasks}}))
    result = dry_run(tmp_path, "finetune", "--configfile", str(path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert planned_jobs(result.stdout)["finetune_task"] == 5  # --configfile merges: the 3 default tasks stay
    commands = {
        c.split("--out results/demo/finetune/")[1].split()[0]: c
        for c in shell_commands(result.stdout)
        if " finetune " in c
    }
    assert f"--train {tmp_path / 'train.csv'} " in commands["mine"] and "--rc-tta" not in commands["mine"]
    assert f"--train {tmp_path / 'gb' / 'train'} " in commands["bench"] and "--rc-tta" in commands["bench"]

"""The `variants` pipeline target: scores the example VCF and writes likelihood tracks, through the CLI only."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pysam
import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_VCF = REPO / "pipelines" / "variants" / "hla_simulated.vcf"

pytestmark = pytest.mark.skipif(shutil.which("hnet-genomics") is None, reason="package not installed")


def dry_run(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "-p",
            "--cores",
            "2",
            "-s",
            str(REPO / "Snakefile"),
            "--directory",
            str(workdir),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_variants_target_scores_the_example_vcf_and_writes_likelihood_tracks(tmp_path):
    result = dry_run(tmp_path, "variants")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    commands = re.findall(
        r"^Shell command: (hnet-genomics|OMP_NUM_THREADS=\d+ hnet-genomics|mkdir -p \S+ && "
        r"OMP_NUM_THREADS=\d+ hnet-genomics) (\S+)(.*)$",
        result.stdout,
        re.M,
    )
    by_command = {c[1]: c[2] for c in commands}
    assert (
        f"--vcf {EXAMPLE_VCF} --out results/demo/variants/scores.vcf.gz --strand both" in by_command["score-variants"]
    )
    assert "--regions " in by_command["likelihood"] and "demo_test_region.bed" in by_command["likelihood"]
    assert "--out results/demo/likelihood/demo --strand both" in by_command["likelihood"]


def test_variants_target_on_another_genome_asks_for_its_vcf(tmp_path):
    result = dry_run(tmp_path, "variants", "--config", "genome=hg38")
    assert result.returncode != 0
    assert "pipeline config key 'variants.vcf': demo-variants lies on the demo genome, not on hg38" in (
        result.stdout + result.stderr
    )


def test_example_vcf_is_sorted_real_coordinate_and_documents_its_simulation():
    with pysam.VariantFile(str(EXAMPLE_VCF)) as vcf:
        header = str(vcf.header)
        records = list(vcf)
    assert "simulated by hnet-genomics benchmarks/simulate_variants.py" in header
    assert "##simulation_command=python benchmarks/simulate_variants.py" in header
    assert [r.pos for r in records] == sorted(r.pos for r in records)
    classes = {r.info["CLASS"] for r in records}
    assert classes == {"cds", "splice", "intron", "intergenic", "any"}
    from hnet_genomics.data import demo
    from hnet_genomics.data.genome import Genome

    genome = Genome(demo.HUMAN_FASTA)
    for r in records:  # every REF is the reference's base(s) at that position
        assert genome.fetch(r.chrom, r.pos - 1, r.pos - 1 + len(r.ref)).decode() == r.ref

# hnet-genomics workflows; every job calls the `hnet-genomics` CLI. Settings: pipelines/config.yaml,
# documentation: pipelines/README.md.
#
#   snakemake pretrain_hg38 --cores 2                      # embedded human region, tiny model, ~15 min
#   snakemake pretrain_hg38 --config genome=hg38 --profile pipelines/profiles/workstation
#   snakemake variants --cores 2                            # score the example VCF, likelihood tracks
#   snakemake benchmark --cores 2 --configfile suite.yaml    # a standard suite (pipelines/README.md)

from pathlib import Path


configfile: str(Path(workflow.basedir) / "pipelines" / "config.yaml")


include: "pipelines/rules/common.smk"


PRETRAIN_TARGETS = [f"{R}/genome/chrom.sizes", f"{R}/report"]
FINETUNE_TARGETS = expand(f"{R}/finetune/{{task}}", task=TASKS)
BOUNDARY_TARGETS = [f"{R}/boundaries/{BOUNDARIES['name']}"]
COMPARE_TARGETS = [f"{R}/compare"]
VARIANT_TARGETS = ([VARIANTS_OUT] if VARIANTS_VCF else []) + [LIKELIHOOD_DIR]
BENCHMARK_TARGETS = [f"{BENCH_DIR}/benchmark.md"]


localrules: all, pretrain_hg38, finetune, boundaries, compare_baselines, variants, benchmark


rule all:
    input:
        PRETRAIN_TARGETS + FINETUNE_TARGETS + BOUNDARY_TARGETS + COMPARE_TARGETS + VARIANT_TARGETS,


rule pretrain_hg38:
    """Genome -> index -> splits -> pretrain -> test bpb vs Markov -> boundary tracks -> report."""
    input:
        PRETRAIN_TARGETS,


rule finetune:
    """Fine-tune the configured model on every task in finetune.tasks."""
    input:
        FINETUNE_TARGETS,


rule boundaries:
    """Boundary tracks for boundaries.fasta / boundaries.regions with boundaries.model."""
    input:
        BOUNDARY_TARGETS,


rule compare_baselines:
    """Every run in `models` on the same data and budget -> comparison table and plot."""
    input:
        COMPARE_TARGETS,


rule benchmark:
    """A standard suite (benchmark.suite) through the fine-tuning protocol: one job per task, then the table."""
    input:
        BENCHMARK_TARGETS,


def variant_targets(wildcards):
    if VARIANTS_VCF_PROBLEM:
        raise config_error("variants.vcf", VARIANTS_VCF_PROBLEM)
    return VARIANT_TARGETS


rule variants:
    """Score variants.vcf with variants.model (VCF.gz + TSV) and write its per-base likelihood tracks."""
    input:
        variant_targets,


include: "pipelines/rules/genome.smk"
include: "pipelines/rules/pretrain.smk"
include: "pipelines/rules/tracks.smk"
include: "pipelines/rules/report.smk"
include: "pipelines/rules/finetune.smk"
include: "pipelines/rules/variants.smk"
include: "pipelines/rules/benchmark.smk"

# hnet-genomics workflows; every job calls the `hnet-genomics` CLI. Settings: pipelines/config.yaml,
# documentation: pipelines/README.md.
#
#   snakemake pretrain_hg38 --cores 2                      # embedded human region, tiny model, ~15 min
#   snakemake pretrain_hg38 --config genome=hg38 --profile pipelines/profiles/workstation

from pathlib import Path


configfile: str(Path(workflow.basedir) / "pipelines" / "config.yaml")


include: "pipelines/rules/common.smk"


PRETRAIN_TARGETS = [f"{R}/genome/chrom.sizes", f"{R}/report"]
FINETUNE_TARGETS = expand(f"{R}/finetune/{{task}}", task=TASKS)
BOUNDARY_TARGETS = [f"{R}/boundaries/{BOUNDARIES['name']}"]
COMPARE_TARGETS = [f"{R}/compare"]


localrules: all, pretrain_hg38, finetune, boundaries, compare_baselines


rule all:
    input:
        PRETRAIN_TARGETS + FINETUNE_TARGETS + BOUNDARY_TARGETS + COMPARE_TARGETS,


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


include: "pipelines/rules/genome.smk"
include: "pipelines/rules/pretrain.smk"
include: "pipelines/rules/tracks.smk"
include: "pipelines/rules/report.smk"
include: "pipelines/rules/finetune.smk"

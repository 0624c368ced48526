"""Real DNA shipped inside the package, so the README commands and the tests run on a fresh machine.

Provenance and how each file was made: ``README.md`` in this folder.
"""

from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parent

HUMAN_FASTA = DEMO_DIR / "human_chr6p21_hla.fa.gz"  # record BA000025.2, 2,229,817 bp, bgzip + .fai/.gzi
ECOLI_FASTA = DEMO_DIR / "ecoli_k12_mg1655.fa.gz"  # record K-12-MG1655, 4,639,675 bp, bgzip + .fai/.gzi
HUMAN_GENES_BED = DEMO_DIR / "human_chr6p21_hla.genes.bed"
HUMAN_EXONS_BED = DEMO_DIR / "human_chr6p21_hla.exons.bed"
HUMAN_CDS_BED = DEMO_DIR / "human_chr6p21_hla.cds.bed"
TFBS_DIR = DEMO_DIR / "tfbs_oct4_vs_mafk"
TFBS_TRAIN = TFBS_DIR / "train.csv.gz"  # gzip CSV: sequence,label,name (pandas reads it directly)
TFBS_TEST = TFBS_DIR / "test.csv.gz"

"""Every subcommand, bad input after bad input: exit status 2, one line on stderr that names the file, line or
option at fault, no traceback, nothing of the user's deleted or changed, and nothing half-written."""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from helpers import tiny_config

from hnet_genomics.cli import main
from hnet_genomics.data import demo
from hnet_genomics.training.pretrain import run_pretrain

FASTA = str(demo.HUMAN_FASTA)
CHROM = "BA000025.2"
EXONS = str(demo.HUMAN_EXONS_BED)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One tiny trained run, two shards of one export and a finished track, shared by every case."""
    root = tmp_path_factory.mktemp("world")
    run_pretrain(tiny_config(2), demo.HUMAN_FASTA, root / "run", progress=False, quiet=True)
    (root / "r.bed").write_text(f"{CHROM}\t1000\t3000\n{CHROM}\t5000\t7000\n")
    for k in (1, 2):
        assert (
            main(
                [
                    "boundaries",
                    "--model",
                    str(root / "run" / "model"),
                    "--fasta",
                    FASTA,
                    "--regions",
                    str(root / "r.bed"),
                    "--out",
                    str(root / f"s{k}"),
                    "--shard",
                    f"{k}/2",
                    "--formats",
                    "bed,bedgraph",
                    "--quiet",
                ]
            )
            == 0
        )
    return root


def snapshot(*roots: Path) -> dict[str, str]:
    """Every file and folder under ``roots`` (hidden ones too) with a digest of its content."""
    found = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for d in dirnames:
                found[os.path.join(dirpath, d)] = "dir"
            for f in filenames:
                path = os.path.join(dirpath, f)
                found[path] = hashlib.sha1(Path(path).read_bytes()).hexdigest()
    return found


@dataclass
class Case:
    name: str
    argv: Callable[[Path, Path], list[str]]  # (workspace, world) -> arguments
    names: str  # regex the one error line must match: the file, line or option at fault
    setup: Callable[[Path], None] = lambda ws: None


def _latin1_csv(ws: Path) -> None:
    (ws / "train.csv").write_bytes(
        b"sequence,label\nACGTACGTAA,0\nACGTTTGCAA,1\n" + "ACGGTACCAA,1,caf\u00e9\n".encode("latin-1")
    )


def _truncated_gz(ws: Path) -> None:
    body = "sequence,label\n" + "".join(f"{'ACGT' * 10},{i % 2}\n" for i in range(3000))
    data = gzip.compress(body.encode())
    (ws / "train.csv.gz").write_bytes(data[: len(data) // 2])


def _two_rows(ws: Path) -> None:
    (ws / "train.csv").write_text("sequence,label\nACGTACGTAA,0\nACGTTTGCAA,1\n")


def _task(ws: Path) -> None:
    rows = "".join(f"{'ACGT' * 5 if i % 2 else 'TTGCA' * 4},{i % 2}\n" for i in range(40))
    (ws / "train.csv").write_text("sequence,label\n" + rows)
    (ws / "test.csv").write_text("sequence,label\n" + rows[:200])


def _foreign_best(ws: Path) -> None:
    _task(ws)
    (ws / "ft" / "best").mkdir(parents=True)
    (ws / "ft" / "best" / "notes.txt").write_text("my notes\n")


def _user_model_dir(ws: Path) -> None:
    (ws / "D" / "model").mkdir(parents=True)
    (ws / "D" / "model" / "mine.txt").write_text("precious\n")


def _afile(ws: Path) -> None:
    (ws / "afile").write_text("mine\n")


def _gz_bed(ws: Path, text: str, name: str) -> None:
    with gzip.open(ws / name, "wt") as f:
        f.write(text)


def _pickle_checkpoint(ws: Path) -> None:
    """A checkpoint that would run code if unpickled without the weights-only restriction."""
    (ws / "shared" / "checkpoints").mkdir(parents=True)
    torch.save({"state_dict": {}, "hyper_parameters": {}, "payload": Path("x")}, ws / "shared/checkpoints/last.ckpt")


def _latin1_bed(ws: Path) -> None:
    (ws / "ann.bed").write_bytes(f"{CHROM}\t100\t200\tex\u00f3n1\n".encode("latin-1"))


def _shards_dir(ws: Path) -> None:
    (ws / "out").mkdir()


TRAIN = ["--config", "dna/hnet_1stage_tiny", "--fasta", FASTA]
CASES = [
    # score-variants, likelihood, embed
    Case(
        "score-variants missing vcf",
        lambda ws, w: [
            "score-variants",
            "--model",
            f"{w}/run/model",
            "--fasta",
            FASTA,
            "--vcf",
            f"{ws}/nope.vcf",
            "--out",
            f"{ws}/o.vcf.gz",
        ],
        r"--vcf .*nope\.vcf: no such file",
    ),
    Case(
        "score-variants out not vcf.gz",
        lambda ws, w: [
            "score-variants",
            "--model",
            f"{w}/run/model",
            "--fasta",
            FASTA,
            "--vcf",
            EXONS,
            "--out",
            f"{ws}/o.txt",
        ],
        r"--out .*o\.txt: the output is a bgzipped VCF",
    ),
    Case(
        "score-variants max-len 0",
        lambda ws, w: [
            "score-variants",
            "--model",
            f"{w}/run/model",
            "--fasta",
            FASTA,
            "--vcf",
            EXONS,
            "--out",
            f"{ws}/o.vcf.gz",
            "--max-len",
            "0",
        ],
        r"argument --max-len",
    ),
    Case(
        "ism missing fasta",
        lambda ws, w: [
            "ism",
            "--model",
            f"{w}/run/model",
            "--fasta",
            f"{ws}/nope.fa",
            "--region",
            f"{CHROM}:1-9",
            "--out",
            f"{ws}/i",
        ],
        r"--fasta .*nope\.fa: no such file",
    ),
    Case(
        "ism region without end",
        lambda ws, w: [
            "ism",
            "--model",
            f"{w}/run/model",
            "--fasta",
            FASTA,
            "--region",
            f"{CHROM}:100",
            "--out",
            f"{ws}/i",
        ],
        r"--region BA000025\.2:100: expected chrom:start-end",
    ),
    Case(
        "ism region past the contig",
        lambda ws, w: [
            "ism",
            "--model",
            f"{w}/run/model",
            "--fasta",
            FASTA,
            "--region",
            f"{CHROM}:5-9999999",
            "--out",
            f"{ws}/i",
        ],
        r"--region .*: must lie within BA000025\.2:1-2,229,817",
    ),
    Case(
        "ism unknown contig",
        lambda ws, w: [
            "ism",
            "--model",
            f"{w}/run/model",
            "--fasta",
            FASTA,
            "--region",
            "chr6:5-9",
            "--out",
            f"{ws}/i",
        ],
        r"--region chr6:5-9: contig 'chr6' is not in the FASTA",
    ),
    Case(
        "ism out is a folder",
        lambda ws, w: [
            "ism",
            "--model",
            f"{w}/run/model",
            "--fasta",
            FASTA,
            "--region",
            f"{CHROM}:5-9",
            "--out",
            str(ws),
        ],
        r"--out .*: is a folder; --out is a file-name prefix",
    ),
    Case(
        "ism even grid",
        lambda ws, w: [
            "ism",
            "--model",
            f"{w}/run/model",
            "--fasta",
            FASTA,
            "--region",
            f"{CHROM}:5-9",
            "--out",
            f"{ws}/i",
            "--grid",
            "4",
        ],
        r"--grid must be an odd number",
    ),
    Case(
        "ism threads 0",
        lambda ws, w: [
            "ism",
            "--model",
            f"{w}/run/model",
            "--fasta",
            FASTA,
            "--region",
            f"{CHROM}:5-9",
            "--out",
            f"{ws}/i",
            "--threads",
            "0",
        ],
        r"argument --threads: expected a positive integer",
    ),
    Case(
        "score-variants even grid",
        lambda ws, w: [
            "score-variants",
            "--model",
            f"{w}/run/model",
            "--fasta",
            FASTA,
            "--vcf",
            EXONS,
            "--out",
            f"{ws}/o.vcf.gz",
            "--grid",
            "2",
        ],
        r"--grid must be an odd number",
    ),
    Case(
        "likelihood window 0",
        lambda ws, w: [
            "likelihood",
            "--model",
            f"{w}/run/model",
            "--fasta",
            FASTA,
            "--out",
            f"{ws}/lk",
            "--window",
            "0",
        ],
        r"argument --window",
    ),
    Case(
        "likelihood missing regions",
        lambda ws, w: [
            "likelihood",
            "--model",
            f"{w}/run/model",
            "--fasta",
            FASTA,
            "--regions",
            f"{ws}/nope.bed",
            "--out",
            f"{ws}/lk",
        ],
        r"--regions .*nope\.bed: no such file",
    ),
    Case(
        "embed missing input",
        lambda ws, w: ["embed", "--model", f"{w}/run/model", "--input", f"{ws}/nope.fa", "--out", f"{ws}/e.npy"],
        r"--input .*nope\.fa: no such file",
    ),
    Case(
        "embed out suffix",
        lambda ws, w: ["embed", "--model", f"{w}/run/model", "--input", FASTA, "--out", f"{ws}/e.txt"],
        r"--out .*e\.txt: name the output",
    ),
    # make-task
    Case(
        "make-task width 0", lambda ws, w: ["make-task", "exon-starts", "--out", f"{ws}/t", "--width", "0"], r"--width"
    ),
    Case(
        "make-task test-from 1.5",
        lambda ws, w: ["make-task", "species", "--out", f"{ws}/t", "--test-from", "1.5"],
        r"--test-from",
    ),
    Case(
        "make-task missing exon BED",
        lambda ws, w: ["make-task", "exon-starts", "--out", f"{ws}/t", "--exons", f"{ws}/nope.bed"],
        r"nope\.bed",
    ),
    Case(
        "make-task genome without label",
        lambda ws, w: ["make-task", "species", "--out", f"{ws}/t", "--genome", FASTA],
        r"--genome",
    ),
    # pretrain
    Case(
        "pretrain max-steps -1",
        lambda ws, w: ["pretrain", *TRAIN, "--out", f"{ws}/o", "--max-steps", "-1"],
        r"argument --max-steps: expected a positive integer, got '-1'",
    ),
    Case(
        "pretrain max-steps 0",
        lambda ws, w: ["pretrain", *TRAIN, "--out", f"{ws}/o", "--max-steps", "0"],
        r"argument --max-steps: expected a positive integer, got '0'",
    ),
    Case(
        "pretrain val_every 0",
        lambda ws, w: ["pretrain", *TRAIN, "--out", f"{ws}/o", "--set", "train.val_every=0"],
        r"train\.val_every must be at least 1, got 0",
    ),
    Case(
        "pretrain lr 0",
        lambda ws, w: ["pretrain", *TRAIN, "--out", f"{ws}/o", "--set", "train.lr=0"],
        r"train\.lr must be a positive number",
    ),
    Case(
        "pretrain num_workers -1",
        lambda ws, w: ["pretrain", *TRAIN, "--out", f"{ws}/o", "--set", "train.num_workers=-1"],
        r"train\.num_workers must be >= 0",
    ),
    Case(
        "pretrain seq_len 1",
        lambda ws, w: ["pretrain", *TRAIN, "--out", f"{ws}/o", "--set", "train.seq_len=1"],
        r"train\.seq_len must be at least 2",
    ),
    Case(
        "pretrain user files in out/model",
        lambda ws, w: ["pretrain", *TRAIN, "--out", f"{ws}/D"],
        r"--out .*/D: holds files a pretraining run does not write \(model/mine\.txt\)",
        _user_model_dir,
    ),
    Case(
        "pretrain out under a file",
        lambda ws, w: ["pretrain", *TRAIN, "--out", f"{ws}/afile/run"],
        r"--out .*afile/run: .*afile is a file, not a folder",
        _afile,
    ),
    Case(
        "pretrain missing fasta",
        lambda ws, w: ["pretrain", "--config", "dna/hnet_1stage_tiny", "--fasta", f"{ws}/none.fa", "--out", f"{ws}/o"],
        r"--fasta .*none\.fa: no such file",
    ),
    Case(
        "pretrain gz split bed",
        lambda ws, w: ["pretrain", *TRAIN, "--intervals", f"{ws}/s.bed.gz", "--out", f"{ws}/o"],
        r"s\.bed\.gz:2: split column value 'holdout'",
        lambda ws: _gz_bed(ws, f"{CHROM}\t0\t1000\ttrain\n{CHROM}\t1000\t2000\tholdout\n", "s.bed.gz"),
    ),
    Case(
        "pretrain unknown config",
        lambda ws, w: ["pretrain", "--config", "dna/nope", "--fasta", FASTA, "--out", f"{ws}/o"],
        r"no shipped config named 'dna/nope'",
    ),
    Case(
        "pretrain resume without checkpoint",
        lambda ws, w: ["pretrain", *TRAIN, "--out", f"{ws}/o", "--resume"],
        r"o/checkpoints/last\.ckpt: no checkpoint to resume from",
    ),
    Case(
        "pretrain foreign pickle checkpoint",
        lambda ws, w: ["pretrain", *TRAIN, "--out", f"{ws}/shared", "--resume"],
        r"last\.ckpt: refused: the checkpoint holds Python objects",
        _pickle_checkpoint,
    ),
    Case(
        "pretrain gpu accelerator without a gpu" if not torch.cuda.is_available() else "pretrain 3 betas",
        lambda ws, w: [
            "pretrain",
            *TRAIN,
            "--out",
            f"{ws}/o",
            "--set",
            "train.accelerator=gpu" if not torch.cuda.is_available() else "train.betas=[0.9,0.9,0.9]",
        ],
        r"train\.accelerator gpu: torch sees no CUDA GPU" if not torch.cuda.is_available() else r"train\.betas",
    ),
    Case(
        "pretrain threads 0",
        lambda ws, w: ["pretrain", *TRAIN, "--out", f"{ws}/o", "--threads", "0"],
        r"argument --threads: expected a positive integer, got '0'",
    ),
    # eval
    Case(
        "eval batch-size 0",
        lambda ws, w: ["eval", "--model", f"{w}/run", "--fasta", FASTA, "--batch-size", "0"],
        r"argument --batch-size: expected a positive integer, got '0'",
    ),
    Case(
        "eval seq-len 0",
        lambda ws, w: ["eval", "--model", f"{w}/run", "--fasta", FASTA, "--seq-len", "0"],
        r"argument --seq-len: expected a positive integer",
    ),
    Case(
        "eval seq-len 1",
        lambda ws, w: ["eval", "--model", f"{w}/run", "--fasta", FASTA, "--seq-len", "1"],
        r"--seq-len must be at least 2",
    ),
    Case(
        "eval out under a file",
        lambda ws, w: ["eval", "--model", f"{w}/run", "--fasta", FASTA, "--out", f"{ws}/afile/r.json"],
        r"--out .*afile is a file, not a folder",
        _afile,
    ),
    Case(
        "eval missing model",
        lambda ws, w: ["eval", "--model", f"{ws}/nomodel", "--fasta", FASTA],
        r"--model .*nomodel: no such folder",
    ),
    Case(
        "eval markov order 20",
        lambda ws, w: ["eval", "--baseline", "markov", "--order", "20", "--fasta", FASTA],
        r"markov order must be between 0 and 13, got 20",
    ),
    Case(
        "eval bad split",
        lambda ws, w: ["eval", "--model", f"{w}/run", "--fasta", FASTA, "--split", "dev"],
        r"argument --split: invalid choice: 'dev'",
    ),
    # finetune
    Case(
        "finetune latin-1 csv",
        lambda ws, w: [
            "finetune",
            "--baseline",
            "kmer",
            "--train",
            f"{ws}/train.csv",
            "--test",
            f"{ws}/train.csv",
            "--out",
            f"{ws}/ft",
        ],
        r"train\.csv:4: byte 0xe9 is not UTF-8 text",
        _latin1_csv,
    ),
    Case(
        "finetune truncated csv.gz",
        lambda ws, w: [
            "finetune",
            "--baseline",
            "kmer",
            "--train",
            f"{ws}/train.csv.gz",
            "--test",
            f"{ws}/train.csv.gz",
            "--out",
            f"{ws}/ft",
        ],
        r"train\.csv\.gz:\d+: truncated or corrupt gzip",
        _truncated_gz,
    ),
    Case(
        "finetune two-row csv",
        lambda ws, w: [
            "finetune",
            "--baseline",
            "kmer",
            "--train",
            f"{ws}/train.csv",
            "--test",
            f"{ws}/train.csv",
            "--out",
            f"{ws}/ft",
        ],
        r"train\.csv: class '0' has 1 training sequence\(s\); each class needs at least 2",
        _two_rows,
    ),
    Case(
        "finetune out under a file",
        lambda ws, w: [
            "finetune",
            "--baseline",
            "kmer",
            "--train",
            f"{ws}/train.csv",
            "--test",
            f"{ws}/test.csv",
            "--out",
            f"{ws}/afile/ft",
        ],
        r"--out .*afile is a file, not a folder",
        lambda ws: (_task(ws), _afile(ws)),
    ),
    Case(
        "finetune user files in best/",
        lambda ws, w: [
            "finetune",
            "--model",
            f"{w}/run/model",
            "--train",
            f"{ws}/train.csv",
            "--test",
            f"{ws}/test.csv",
            "--out",
            f"{ws}/ft",
        ],
        r"ft/best: holds files fine-tuning did not write \(notes\.txt\)",
        _foreign_best,
    ),
    Case(
        "finetune val-fraction 1.5",
        lambda ws, w: [
            "finetune",
            "--baseline",
            "kmer",
            "--train",
            "t.csv",
            "--test",
            "t.csv",
            "--out",
            f"{ws}/ft",
            "--val-fraction",
            "1.5",
        ],
        r"argument --val-fraction: expected a number between 0 and 1",
    ),
    Case(
        "finetune epochs 0",
        lambda ws, w: [
            "finetune",
            "--baseline",
            "kmer",
            "--train",
            "t.csv",
            "--test",
            "t.csv",
            "--out",
            f"{ws}/ft",
            "--epochs",
            "0",
        ],
        r"argument --epochs: expected a positive integer",
    ),
    Case(
        "finetune missing train",
        lambda ws, w: [
            "finetune",
            "--baseline",
            "kmer",
            "--train",
            f"{ws}/none.csv",
            "--test",
            f"{ws}/none.csv",
            "--out",
            f"{ws}/ft",
        ],
        r"none\.csv: no such file or directory",
    ),
    # boundaries
    Case(
        "boundaries threads -1",
        lambda ws, w: [
            "boundaries",
            "--model",
            f"{w}/run/model",
            "--fasta",
            FASTA,
            "--out",
            f"{ws}/x",
            "--threads",
            "-1",
        ],
        r"argument --threads: expected a positive",
    ),
    Case(
        "boundaries gz regions",
        lambda ws, w: [
            "boundaries",
            "--model",
            f"{w}/run/model",
            "--fasta",
            FASTA,
            "--regions",
            f"{ws}/r.bed.gz",
            "--out",
            f"{ws}/tr/x",
        ],
        r"r\.bed\.gz:2: chromosome 'chr6' is not in",
        lambda ws: _gz_bed(ws, f"{CHROM}\t0\t100\nchr6\t0\t100\n", "r.bed.gz"),
    ),
    Case(
        "boundaries batch-size 0",
        lambda ws, w: [
            "boundaries",
            "--model",
            f"{w}/run/model",
            "--fasta",
            FASTA,
            "--out",
            f"{ws}/x",
            "--batch-size",
            "0",
        ],
        r"argument --batch-size: expected a positive integer",
    ),
    Case(
        "boundaries out under a file",
        lambda ws, w: ["boundaries", "--model", f"{w}/run/model", "--fasta", FASTA, "--out", f"{ws}/afile/x"],
        r"--out .*afile is a file",
        _afile,
    ),
    Case(
        "boundaries window 1",
        lambda ws, w: [
            "boundaries",
            "--model",
            f"{w}/run/model",
            "--fasta",
            FASTA,
            "--out",
            f"{ws}/x",
            "--window",
            "1",
        ],
        r"--window must be at least 2",
    ),
    Case(
        "boundaries bad format",
        lambda ws, w: [
            "boundaries",
            "--model",
            f"{w}/run/model",
            "--fasta",
            FASTA,
            "--out",
            f"{ws}/x",
            "--formats",
            "bed,wig",
        ],
        r"--formats: unknown format 'wig'",
    ),
    Case(
        "boundaries bad shard",
        lambda ws, w: [
            "boundaries",
            "--model",
            f"{w}/run/model",
            "--fasta",
            FASTA,
            "--out",
            f"{ws}/x",
            "--shard",
            "5/4",
        ],
        r"--shard expects K/N",
    ),
    Case(
        "boundaries not a model",
        lambda ws, w: ["boundaries", "--model", str(ws), "--fasta", FASTA, "--out", f"{ws}/x"],
        r"not a saved model \(expected config\.json",
    ),
    # merge-tracks
    Case(
        "merge incomplete shard set",
        lambda ws, w: ["merge-tracks", "--shards", f"{w}/s1", "--out", f"{ws}/out/m"],
        r"shard\(s\) 2/2 missing",
        _shards_dir,
    ),
    Case(
        "merge duplicated shard",
        lambda ws, w: ["merge-tracks", "--shards", f"{w}/s1", f"{w}/s1", "--out", f"{ws}/out/m"],
        r"s1: shard 1/2 is given twice",
        _shards_dir,
    ),
    # enrichment
    Case(
        "enrichment gz annotation strand",
        lambda ws, w: [
            "enrichment",
            "--boundaries",
            f"{w}/s1.stage1.bed",
            "--annotation",
            f"{ws}/ann.bed.gz",
            "--out",
            f"{ws}/en",
        ],
        r"ann\.bed\.gz:1: strand must be \+, - or \., got 'x'",
        lambda ws: _gz_bed(ws, f"{CHROM}\t100\t200\tex\t0\tx\n", "ann.bed.gz"),
    ),
    Case(
        "enrichment latin-1 annotation",
        lambda ws, w: [
            "enrichment",
            "--boundaries",
            f"{w}/s1.stage1.bed",
            "--annotation",
            f"{ws}/ann.bed",
            "--out",
            f"{ws}/en",
        ],
        r"ann\.bed:1: byte 0xf3 is not UTF-8 text",
        _latin1_bed,
    ),
    Case(
        "enrichment permutations 0",
        lambda ws, w: [
            "enrichment",
            "--boundaries",
            "b.bed",
            "--annotation",
            "a.bed",
            "--out",
            f"{ws}/en",
            "--permutations",
            "0",
        ],
        r"argument --permutations: expected a positive integer",
    ),
    Case(
        "enrichment bad flank",
        lambda ws, w: [
            "enrichment",
            "--boundaries",
            f"{w}/s1.stage1.bed",
            "--annotation",
            EXONS,
            "--out",
            f"{ws}/en",
            "--flank",
            "5,x",
        ],
        r"--flank expects comma-separated integers, got '5,x'",
    ),
    Case(
        "enrichment out under a file",
        lambda ws, w: [
            "enrichment",
            "--boundaries",
            f"{w}/s1.stage1.bed",
            "--annotation",
            EXONS,
            "--out",
            f"{ws}/afile/en",
        ],
        r"--out .*afile is a file",
        _afile,
    ),
    # compare / report
    Case(
        "compare bad run spec",
        lambda ws, w: ["compare", "--runs", "hnet", "--out", f"{ws}/c"],
        r"--runs expects NAME=PATH, got 'hnet'",
    ),
    Case(
        "compare missing run",
        lambda ws, w: ["compare", "--runs", f"a={ws}/none", "--out", f"{ws}/c"],
        r"none: no such pretraining directory",
    ),
    Case(
        "compare out under a file",
        lambda ws, w: ["compare", "--runs", f"a={w}/run", "--out", f"{ws}/afile/c"],
        r"--out .*afile is a file",
        _afile,
    ),
    Case(
        "report out is a folder",
        lambda ws, w: ["report", "--pretrain", f"{w}/run", "--out", str(ws)],
        r"--out .*: is a folder, expected a file name",
    ),
    Case(
        "report missing tracks",
        lambda ws, w: ["report", "--pretrain", f"{w}/run", "--tracks", f"{ws}/none", "--out", f"{ws}/rep/report.md"],
        r"none: no track files",
    ),
    # data
    Case(
        "prepare line-width 0",
        lambda ws, w: ["data", "prepare", "--fasta", FASTA, "--out", f"{ws}/g.fa.gz", "--line-width", "0"],
        r"argument --line-width: expected a positive",
    ),
    Case(
        "prepare out under a file",
        lambda ws, w: ["data", "prepare", "--fasta", FASTA, "--out", f"{ws}/afile/g.fa.gz"],
        r"--out .*afile is a file",
        _afile,
    ),
    Case(
        "split fraction 1.5",
        lambda ws, w: ["data", "split", "--fasta", FASTA, "--set", "data.test_fraction=1.5", "--out", f"{ws}/s.bed"],
        r"data\.test_fraction must be >= 0 and <= 1",
    ),
    Case(
        "sizes missing fasta",
        lambda ws, w: ["data", "sizes", "--fasta", f"{ws}/none.fa", "--out", f"{ws}/c.sizes"],
        r"--fasta .*none\.fa: no such file",
    ),
    Case(
        "fetch-hg38 bad md5",
        lambda ws, w: ["data", "fetch-hg38", "--dest", f"{ws}/hg38", "--md5", "xyz"],
        r"--md5: expected 32 hexadecimal digits, got 'xyz'",
    ),
    Case(
        "fetch-hg38 timeout 0",
        lambda ws, w: ["data", "fetch-hg38", "--dest", f"{ws}/hg38", "--timeout", "0"],
        r"argument --timeout: expected a positive number",
    ),
    Case(
        "fetch-hg38 dest under a file",
        lambda ws, w: ["data", "fetch-hg38", "--dest", f"{ws}/afile/hg38", "--md5", "0" * 32],
        r"--dest .*afile is a file",
        _afile,
    ),
    # top level
    Case("unknown command", lambda ws, w: ["train"], r"argument COMMAND: invalid choice: 'train'"),
]


def test_the_table_covers_every_subcommand_with_at_least_40_cases():
    from hnet_genomics.cli import build_parser

    commands = {c.argv(Path("w"), Path("w"))[0] for c in CASES}
    commands |= {" ".join(c.argv(Path("w"), Path("w"))[:2]) for c in CASES if c.argv(Path("w"), Path("w"))[0] == "data"}
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) - {"data"} <= commands
    assert {f"data {name}" for name in sub.choices["data"]._actions[-1].choices} <= commands
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_line_exit_2_and_touches_nothing(world, tmp_path, capsys, case):
    ws = tmp_path / "ws"
    ws.mkdir()
    case.setup(ws)
    before, shared_before = snapshot(ws), snapshot(world)
    try:
        rc = main(case.argv(ws, world))
    except SystemExit as e:  # argparse
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("hnet-genomics: error: "), err
    assert re.search(case.names, lines[0]), lines[0]
    assert snapshot(ws) == before  # nothing deleted or changed, nothing new (no temporaries, no empty folders)
    assert snapshot(world) == shared_before


@pytest.mark.parametrize(
    "argv,names",
    [
        (
            [
                "pretrain",
                "--config",
                "dna/hnet_1stage_tiny",
                "--fasta",
                FASTA,
                "--out",
                "{ws}/o",
                "--set",
                "train.max_steps=0",
            ],
            "train.max_steps must be at least 1",
        ),
        (["boundaries", "--model", "{ws}", "--fasta", FASTA, "--out", "{ws}/x", "--threads", "-1"], "--threads"),
        (
            ["eval", "--baseline", "markov", "--fasta", FASTA, "--intervals", "{ws}/s.bed.gz", "--order", "2"],
            r"s\.bed\.gz:1: a BED line needs 4 columns",
        ),
    ],
)
def test_a_real_process_prints_one_line_and_no_traceback(tmp_path, argv, names):
    _gz_bed(tmp_path, f"{CHROM}\t0\t100\n", "s.bed.gz")
    proc = subprocess.run(
        [sys.executable, "-m", "hnet_genomics.cli", *(a.format(ws=tmp_path) for a in argv)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and re.search(names, proc.stderr), proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.bed.gz"]

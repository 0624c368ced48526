"""Every subcommand, bad input after bad input: exit status 2, one line on stderr that names the file, line or
option at fault, no traceback, nothing of the user's deleted or changed, and nothing half-written."""

from __future__ import annotations

import gzip
import hashlib
import json
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
REFERENCE = Path(__file__).parent / "fixtures" / "reference"
CHROM = "BA000025.2"
EXONS = str(demo.HUMAN_EXONS_BED)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One tiny trained run, two shards of one boundary export and of one likelihood export, shared by every
    case."""
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
        likelihood = ["likelihood", "--model", str(root / "run" / "model"), "--fasta", FASTA, "--quiet"]
        regions = ["--regions", str(root / "r.bed"), "--out", str(root / f"l{k}"), "--shard", f"{k}/2"]
        assert main([*likelihood, *regions]) == 0
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


def _reference_files(ws: Path, extra_tensor: bool = False, config_edit: dict | None = None) -> None:
    """The 1-stage reference-format fixture as a .pt checkpoint and a config JSON, optionally spoiled."""
    from safetensors.torch import load_file

    state = load_file(REFERENCE / "hnet_1stage.weights.safetensors")
    if extra_tensor:
        state["backbone.extra"] = torch.zeros(3)
    torch.save(state, ws / "ckpt.pt")
    config = json.loads((REFERENCE / "hnet_1stage.config.json").read_text())
    (ws / "c.json").write_text(json.dumps(config | (config_edit or {})))


def _text_run(run: Path) -> None:
    """What `pretrain --text` leaves in metrics.json, in bytes."""
    run.mkdir()
    history = [{"step": 2, "bytes_seen": 512, "val_bpb": 6.1}]
    metrics = {"unit": "byte", "val_bpb": 5.9, "bytes_seen": 1024, "bytes_per_second": 900.0, "history": history}
    (run / "metrics.json").write_text(json.dumps(metrics))


def _latin1_bed(ws: Path) -> None:
    (ws / "ann.bed").write_bytes(f"{CHROM}\t100\t200\tex\u00f3n1\n".encode("latin-1"))


def _shards_dir(ws: Path) -> None:
    (ws / "out").mkdir()


def _wrong_class_folder(ws: Path) -> None:
    """A Genomic Benchmarks task whose class folders are not the task's classes (another task's folder)."""
    for split in ("train", "test"):
        for cls in ("negative", "maybe"):
            (ws / "gb" / "human_nontata_promoters" / split / cls).mkdir(parents=True)
            (ws / "gb" / "human_nontata_promoters" / split / cls / "1.txt").write_text("ACGTACGTAC")


def _empty_suite(ws: Path) -> None:
    (ws / "suite").mkdir()


TRAIN = ["--config", "dna/hnet_1stage_tiny", "--fasta", FASTA]
BENCH = ["benchmark", "--suite"]
BENCH_NT = [*BENCH, "nucleotide-transformer"]
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
        "compare text run beside a DNA run",
        lambda ws, w: ["compare", "--runs", f"a={w}/run", f"b={ws}/text", "--out", f"{ws}/c"],
        r"--runs: a=.*run counts bits per base but b=.*text counts bits per byte; compare runs of one kind",
        lambda ws: _text_run(ws / "text"),
    ),
    Case(
        "report text eval of a DNA run",
        lambda ws, w: ["report", "--pretrain", f"{w}/run", "--eval", f"{ws}/t.json", "--out", f"{ws}/rep/r.md"],
        r"--eval .*t\.json: bits per byte, while --pretrain .*run: bits per base",
        lambda ws: (ws / "t.json").write_text(
            '{"model": "m", "split": "test", "unit": "byte", "bpb": 1.2, "bytes": 9}'
        ),
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
    # import-reference, push
    Case(
        "import-reference missing checkpoint",
        lambda ws, w: [
            "import-reference",
            "--checkpoint",
            f"{ws}/nope.pt",
            "--config",
            f"{ws}/c.json",
            "--out",
            f"{ws}/m",
        ],
        r"--checkpoint .*nope\.pt: no such file",
        _reference_files,
    ),
    Case(
        "import-reference unknown config key",
        lambda ws, w: [
            "import-reference",
            "--checkpoint",
            f"{ws}/ckpt.pt",
            "--config",
            f"{ws}/c.json",
            "--out",
            f"{ws}/m",
        ],
        r"c\.json: unknown key 'headdim'",
        lambda ws: _reference_files(ws, config_edit={"headdim": 32}),
    ),
    Case(
        "import-reference tensor left over",
        lambda ws, w: [
            "import-reference",
            "--checkpoint",
            f"{ws}/ckpt.pt",
            "--config",
            f"{ws}/c.json",
            "--out",
            f"{ws}/m",
        ],
        r"ckpt\.pt: 1 tensor\(s\) the config does not account for, e\.g\. 'backbone\.extra'",
        lambda ws: _reference_files(ws, extra_tensor=True),
    ),
    Case(
        "import-reference target compression count",
        lambda ws, w: [
            "import-reference",
            "--checkpoint",
            f"{ws}/ckpt.pt",
            "--config",
            f"{ws}/c.json",
            "--out",
            f"{ws}/m",
            "--target-compression",
            "3",
            "3",
        ],
        r"c\.json: 1 chunking level\(s\), but 2 target compression value\(s\) given",
        _reference_files,
    ),
    Case(
        "import-reference into a user's folder",
        lambda ws, w: [
            "import-reference",
            "--checkpoint",
            f"{ws}/ckpt.pt",
            "--config",
            f"{ws}/c.json",
            "--out",
            f"{ws}/D/model",
        ],
        r"--out .*D/model: holds files a model folder does not \(mine\.txt\)",
        lambda ws: (_reference_files(ws), _user_model_dir(ws)),
    ),
    Case(
        "import-reference into the folder of its config.json",
        lambda ws, w: [
            "import-reference",
            "--checkpoint",
            f"{ws}/ckpt.pt",
            "--config",
            f"{ws}/ref/config.json",
            "--out",
            f"{ws}/ref",
        ],
        r"--out .*ref: writes .*ref/config\.json, which is the input --config",
        lambda ws: (_reference_files(ws), (ws / "ref").mkdir(), (ws / "c.json").rename(ws / "ref" / "config.json")),
    ),
    Case(
        "push no such model",
        lambda ws, w: ["push", "--model", f"{ws}/nope", "--repo", "lab/x", "--dry-run"],
        r"--model .*nope: no such folder",
    ),
    Case(
        "push bad repo id",
        lambda ws, w: ["push", "--model", f"{w}/run", "--repo", "lab x", "--dry-run"],
        r"--repo lab x: not a Hugging Face repo id",
    ),
    Case(
        "push eval not an eval result",
        lambda ws, w: ["push", "--model", f"{w}/run", "--repo", "lab/x", "--eval", f"{ws}/e.json", "--dry-run"],
        r"e\.json: not an `hnet-genomics eval --out` result",
        lambda ws: (ws / "e.json").write_text('{"accuracy": 0.9}'),
    ),
    Case(
        "pretrain text into a DNA config",
        lambda ws, w: ["pretrain", "--config", "dna/hnet_1stage_tiny", "--text", EXONS, "--out", f"{ws}/o"],
        r"--text: config dna/hnet_1stage_tiny reads DNA \(data\.kind: dna\)",
    ),
    # benchmark, benchmark-table, benchmark-fetch
    Case(
        "benchmark unknown suite",
        lambda ws, w: [*BENCH, "gue", "--data", f"{ws}", "--config", "dna/hnet_1stage_tiny", "--out", f"{ws}/o"],
        r"--suite: unknown suite 'gue' \(choose from genomic-benchmarks, nucleotide-transformer, or give a suite",
    ),
    Case(
        "benchmark unknown task",
        lambda ws, w: (
            [*BENCH_NT, "--data", f"{ws}", "--config", "dna/hnet_1stage_tiny", "--out", f"{ws}/o"]
            + ["--tasks", "H3,H3K27ac"]
        ),
        r"--tasks: 'H3K27ac' is not a task of nucleotide-transformer \(tasks: H3, H3K14ac",
    ),
    Case(
        "benchmark empty task name",
        lambda ws, w: (
            [*BENCH_NT, "--data", f"{ws}", "--config", "dna/hnet_1stage_tiny", "--out", f"{ws}/o"]
            + ["--tasks", "H3,,H4"]
        ),
        r"argument --tasks: expected comma-separated task names, got 'H3,,H4'",
    ),
    Case(
        "benchmark data missing",
        lambda ws, w: [*BENCH_NT, "--data", f"{ws}/none", "--config", "dna/hnet_1stage_tiny", "--out", f"{ws}/o"],
        r"--data .*none: no such folder \(add --fetch to download the suite into it\)",
    ),
    Case(
        "benchmark task not in data",
        lambda ws, w: (
            [*BENCH_NT, "--data", f"{ws}/suite", "--config", "dna/hnet_1stage_tiny", "--out", f"{ws}/o"]
            + ["--tasks", "H3"]
        ),
        r"--data .*suite: 1 task\(s\) missing or incomplete \(H3\); add --fetch",
        _empty_suite,
    ),
    Case(
        "benchmark seeds 0",
        lambda ws, w: [*BENCH_NT, "--data", f"{ws}", "--config", "c", "--out", f"{ws}/o", "--seeds", "0"],
        r"argument --seeds: expected a positive integer, got '0'",
    ),
    Case(
        "benchmark max-train 0",
        lambda ws, w: [*BENCH_NT, "--data", f"{ws}", "--config", "c", "--out", f"{ws}/o", "--max-train", "0"],
        r"argument --max-train: expected a positive integer, got '0'",
    ),
    Case(
        "benchmark out under a file",
        lambda ws, w: [*BENCH_NT, "--data", f"{ws}/suite", "--config", "c", "--out", f"{ws}/afile/o"],
        r"--out .*afile is a file, not a folder",
        lambda ws: (_afile(ws), _empty_suite(ws)),
    ),
    Case(
        "benchmark out is the data folder",
        lambda ws, w: [*BENCH_NT, "--data", f"{ws}/suite", "--config", "c", "--out", f"{ws}/suite/"],
        r"--out .*suite: is the --data folder; results go beside the suite, not into it",
        _empty_suite,
    ),
    Case(
        "benchmark model folder not a model",
        lambda ws, w: (
            [*BENCH, "genomic-benchmarks", "--data", f"{ws}/gb", "--model", f"{ws}/gb", "--out", f"{ws}/o"]
            + ["--tasks", "human_nontata_promoters"]
        ),
        r"gb: not a saved model \(expected config\.json and model\.safetensors\)",
        _wrong_class_folder,
    ),
    Case(
        "benchmark model inside a task folder it writes",
        lambda ws, w: (
            [*BENCH, "genomic-benchmarks", "--data", f"{ws}/gb", "--model", f"{ws}/o/human_nontata_promoters/m"]
            + ["--out", f"{ws}/o", "--tasks", "human_nontata_promoters"]
        ),
        r"--out .*o: writes .*o/human_nontata_promoters, which holds the input --model",
        _wrong_class_folder,
    ),
    Case(
        "benchmark labels of another task",
        lambda ws, w: (
            [*BENCH, "genomic-benchmarks", "--data", f"{ws}/gb", "--config", "dna/hnet_1stage_tiny"]
            + ["--out", f"{ws}/o", "--tasks", "human_nontata_promoters", "--quiet"]
        ),
        r"maybe/1\.txt:1: label 'maybe' is not a class of genomic-benchmarks task human_nontata_promoters "
        r"\(negative, positive\)",
        _wrong_class_folder,
    ),
    Case(
        "benchmark-table runs missing",
        lambda ws, w: ["benchmark-table", "--suite", "genomic-benchmarks", "--runs", f"{ws}/none"],
        r"--runs .*none: no such folder",
    ),
    Case(
        "benchmark-table nothing finished",
        lambda ws, w: ["benchmark-table", "--suite", "genomic-benchmarks", "--runs", f"{ws}"],
        r"--runs .*: no finished genomic-benchmarks task \(no <task>/metrics\.json\)",
    ),
    Case(
        "benchmark-fetch data under a file",
        lambda ws, w: ["benchmark-fetch", "--suite", "nucleotide-transformer", "--data", f"{ws}/afile/nt"],
        r"--data .*afile is a file, not a folder",
        _afile,
    ),
    # top level
    Case("unknown command", lambda ws, w: ["train"], r"argument COMMAND: invalid choice: 'train'"),
]

# ---------------------------------------------------------------------------------------------------------
# Outputs never replace inputs (hnet_genomics/outputs.py): every command, an output named like an input or a
# file derived from an output's name landing on one; as typed, through a symbolic link, or a hard link.

VCF = str(Path(__file__).resolve().parents[1] / "pipelines" / "variants" / "hla_simulated.vcf")
POLICY = r"; an output may never replace an input \(choose another --out\)"


def _small_fasta(ws: Path) -> None:
    with gzip.open(FASTA, "rt") as f:
        (ws / "g.fa").write_text("".join(next(f) for _ in range(200)))


def _seqs_tsv(ws: Path) -> None:
    (ws / "seqs.tsv").write_text("sequence\tname\nACGTACGTAAGG\ta\nTTGCAGGCATCA\tb\n")


def _vcf_gz(ws: Path) -> None:
    import pysam

    pysam.tabix_compress(VCF, str(ws / "c.vcf.gz"))


def _tiny_model(path: Path) -> None:
    from hnet_genomics.model.lm import HNetLM

    HNetLM(tiny_config(1).model).save_pretrained(path)


def _mismatched_model(ws: Path) -> None:
    """A model folder whose config.json was edited after saving: one width no longer matches the weights."""
    import json

    _tiny_model(ws / "m")
    config = json.loads((ws / "m" / "config.json").read_text())
    config["d_model"] = [config["d_model"][0], config["d_model"][1] + 32]
    (ws / "m" / "config.json").write_text(json.dumps(config))
    _task(ws)
    _seqs_tsv(ws)


def _earlier_finetune(ws: Path) -> None:
    """The classifier an earlier `finetune --out ft` saved, whose backbone is now fine-tuned again."""
    _task(ws)
    _tiny_model(ws / "ft" / "best" / "backbone")
    (ws / "ft" / "best" / "classifier.json").write_text("{}\n")
    (ws / "ft" / "best" / "head.safetensors").write_bytes(b"")


def _hard_link(ws: Path) -> None:
    _small_fasta(ws)
    os.link(ws / "g.fa", ws / "h.json")


def _symlink(ws: Path) -> None:
    _small_fasta(ws)
    os.symlink(ws / "g.fa", ws / "s.json")


def _run_config(ws: Path) -> None:
    (ws / "o").mkdir()
    (ws / "o" / "config.yaml").write_text(f"{CHROM}\t0\t1000\ttrain\n")


def _exons_in_out(ws: Path) -> None:
    (ws / "t").mkdir()
    (ws / "t" / "task.json").write_text(f"{CHROM}\t100\t200\n")


def _track_regions(ws: Path) -> None:
    (ws / "P.stage1.bed").write_text(f"{CHROM}\t1000\t2000\n")


def _annotation_in_out(ws: Path) -> None:
    (ws / "en").mkdir()
    (ws / "en" / "enrichment.tsv").write_text(f"{CHROM}\t100\t200\n")


def _eval_json(ws: Path) -> None:
    (ws / "e.json").write_text('{"model": "m", "split": "test", "bpb": 1.9, "bases": 100}\n')


def _labels(ws: Path) -> None:
    _small_fasta(ws)


def _whole_task(ws: Path) -> None:
    rows = [f"{'ACGT' * 5 if i % 2 else 'TTGCA' * 4},{i % 2}\n" for i in range(40)]
    (ws / "train.csv").write_text("sequence,label\n" + "".join(rows))
    (ws / "test.csv").write_text("sequence,label\n" + "".join(rows[:10]))


MODEL = lambda w: f"{w}/run/model"  # noqa: E731
CASES += [
    Case(
        "embed index over --input",
        lambda ws, w: ["embed", "--model", MODEL(w), "--input", f"{ws}/seqs.tsv", "--out", f"{ws}/seqs.npy"],
        r"--out .*seqs\.npy: writes .*seqs\.tsv, which is the input --input .*seqs\.tsv" + POLICY,
        _seqs_tsv,
    ),
    Case(
        "embed into the model folder",
        lambda ws, w: ["embed", "--model", MODEL(w), "--input", f"{ws}/seqs.tsv", "--out", f"{w}/run/model/e.npy"],
        r"--out .*model/e\.npy: lies inside the input --model .*run/model, a folder this command reads",
        _seqs_tsv,
    ),
    Case(
        "eval out = fasta",
        lambda ws, w: ["eval", "--model", f"{w}/run", "--fasta", f"{ws}/g.fa", "--out", f"{ws}/g.fa"],
        r"--out .*g\.fa: is the input --fasta .*g\.fa" + POLICY,
        _small_fasta,
    ),
    Case(
        "eval out = fasta index",
        lambda ws, w: ["eval", "--model", f"{w}/run", "--fasta", f"{ws}/g.fa", "--out", f"{ws}/g.fa.fai"],
        r"--out .*g\.fa\.fai: is .*g\.fa\.fai, read with the input --fasta .*g\.fa" + POLICY,
        _small_fasta,
    ),
    Case(
        "eval out hard link to fasta",
        lambda ws, w: ["eval", "--model", f"{w}/run", "--fasta", f"{ws}/g.fa", "--out", f"{ws}/h.json"],
        r"--out .*h\.json: is a hard link to the input --fasta .*g\.fa",
        _hard_link,
    ),
    Case(
        "eval out symlink to fasta",
        lambda ws, w: ["eval", "--model", f"{w}/run", "--fasta", f"{ws}/g.fa", "--out", f"{ws}/s.json"],
        r"--out .*s\.json: is the input --fasta .*g\.fa",
        _symlink,
    ),
    Case(
        "eval out = run config",
        lambda ws, w: ["eval", "--model", f"{w}/run", "--fasta", FASTA, "--out", f"{w}/run/config.yaml"],
        r"--out .*run/config\.yaml: is the input --model .*run/config\.yaml",
    ),
    Case(
        "score-variants out = vcf",
        lambda ws, w: [
            "score-variants",
            "--model",
            MODEL(w),
            "--fasta",
            FASTA,
            "--vcf",
            f"{ws}/c.vcf.gz",
            "--out",
            f"{ws}/c.vcf.gz",
        ],
        r"--out .*c\.vcf\.gz: is the input --vcf .*c\.vcf\.gz" + POLICY,
        _vcf_gz,
    ),
    Case(
        "boundaries regions = a track of its prefix",
        lambda ws, w: [
            "boundaries",
            "--model",
            MODEL(w),
            "--fasta",
            FASTA,
            "--regions",
            f"{ws}/P.stage1.bed",
            "--out",
            f"{ws}/P",
        ],
        r"--out .*/P: writes .*P\.stage1\.bed, which is the input --regions .*P\.stage1\.bed" + POLICY,
        _track_regions,
    ),
    Case(
        "boundaries into the model folder",
        lambda ws, w: ["boundaries", "--model", MODEL(w), "--fasta", FASTA, "--out", f"{w}/run/model/b"],
        r"--out .*model/b: writes into the input --model .*run/model, a folder this command reads",
    ),
    Case(
        "ism into the model folder",
        lambda ws, w: [
            "ism",
            "--model",
            MODEL(w),
            "--fasta",
            FASTA,
            "--region",
            f"{CHROM}:5-9",
            "--out",
            f"{w}/run/model/i",
        ],
        r"--out .*model/i: writes into the input --model .*run/model, a folder this command reads",
    ),
    Case(
        "likelihood regions = a track of its prefix",
        lambda ws, w: [
            "likelihood",
            "--model",
            MODEL(w),
            "--fasta",
            FASTA,
            "--regions",
            f"{ws}/P.chrom.sizes",
            "--out",
            f"{ws}/P",
        ],
        r"--out .*/P: writes .*P\.chrom\.sizes, which is the input --regions",
        lambda ws: (ws / "P.chrom.sizes").write_text(f"{CHROM}\t1000\t2000\n"),
    ),
    Case(
        "enrichment annotation inside out",
        lambda ws, w: [
            "enrichment",
            "--boundaries",
            f"{w}/s1.stage1.bed",
            "--annotation",
            f"{ws}/en/enrichment.tsv",
            "--out",
            f"{ws}/en",
        ],
        r"--out .*en: writes .*en/enrichment\.tsv, which is the input --annotation",
        _annotation_in_out,
    ),
    Case(
        "pretrain intervals = a file the run writes",
        lambda ws, w: ["pretrain", *TRAIN, "--intervals", f"{ws}/o/config.yaml", "--out", f"{ws}/o"],
        r"--out .*/o: writes .*o/config\.yaml, which is the input --intervals",
        _run_config,
    ),
    Case(
        "finetune from the backbone its out replaces",
        lambda ws, w: [
            "finetune",
            "--model",
            f"{ws}/ft/best/backbone",
            "--train",
            f"{ws}/train.csv",
            "--test",
            f"{ws}/test.csv",
            "--out",
            f"{ws}/ft",
        ],
        r"--out .*ft: writes .*ft/best, which holds the input --model .*ft/best/backbone",
        _earlier_finetune,
    ),
    Case(
        "make-task exons inside out",
        lambda ws, w: ["make-task", "exon-starts", "--exons", f"{ws}/t/task.json", "--out", f"{ws}/t"],
        r"--out .*/t: writes .*t/task\.json, which is the input --exons",
        _exons_in_out,
    ),
    Case(
        "report out = eval",
        lambda ws, w: ["report", "--eval", f"{ws}/e.json", "--out", f"{ws}/e.json"],
        r"--out .*e\.json: is the input --eval .*e\.json",
        _eval_json,
    ),
    Case(
        "report into the pretrain run",
        lambda ws, w: ["report", "--pretrain", f"{w}/run", "--out", f"{w}/run/report.md"],
        r"--out .*run/report\.md: lies inside the input --pretrain .*run, a folder this command reads",
    ),
    Case(
        "compare into a run",
        lambda ws, w: ["compare", "--runs", f"a={w}/run", "--out", f"{w}/run"],
        r"--out .*run: writes .*run/comparison\.md, which lies inside the input --runs .*run",
    ),
    Case(
        "prepare out = fasta index",
        lambda ws, w: ["data", "prepare", "--fasta", f"{ws}/g.fa", "--out", f"{ws}/g.fa.fai"],
        r"--out .*g\.fa\.fai: is .*g\.fa\.fai, read with the input --fasta .*g\.fa",
        _small_fasta,
    ),
    Case(
        "split out = intervals",
        lambda ws, w: ["data", "split", "--fasta", FASTA, "--intervals", f"{ws}/s.bed", "--out", f"{ws}/s.bed"],
        r"--out .*s\.bed: is the input --intervals .*s\.bed",
        lambda ws: (ws / "s.bed").write_text(f"{CHROM}\t0\t100000\ttrain\n"),
    ),
    Case(
        "sizes out = fasta",
        lambda ws, w: ["data", "sizes", "--fasta", f"{ws}/g.fa", "--out", f"{ws}/g.fa"],
        r"--out .*g\.fa: is the input --fasta",
        _small_fasta,
    ),
    Case(
        "fetch-hg38 into its file:// mirror",
        lambda ws, w: (
            ["data", "fetch-hg38", "--base-url", f"file://{ws}/mirror/", "--dest", f"{ws}/mirror"] + ["--md5", "0" * 32]
        ),
        r"--dest .*mirror: writes .*mirror/hg38\.fa\.gz, which is the input --base-url .*mirror/hg38\.fa\.gz",
        lambda ws: ((ws / "mirror").mkdir(), (ws / "mirror" / "hg38.fa.gz").write_bytes(gzip.compress(b">c\nACGT\n"))),
    ),
    # Every file argument given another argument's file: one line naming the file, nothing written.
    Case(
        "boundaries regions = fasta",
        lambda ws, w: [
            "boundaries",
            "--model",
            MODEL(w),
            "--fasta",
            FASTA,
            "--regions",
            f"{ws}/g.fa",
            "--out",
            f"{ws}/x",
        ],
        r"g\.fa:1: a BED line needs chrom, start and end",
        _small_fasta,
    ),
    Case(
        "likelihood fasta = vcf",
        lambda ws, w: ["likelihood", "--model", MODEL(w), "--fasta", VCF, "--out", f"{ws}/x"],
        r"hla_simulated\.vcf:1: not FASTA",
    ),
    Case(
        "score-variants vcf = fasta",
        lambda ws, w: [
            "score-variants",
            "--model",
            MODEL(w),
            "--fasta",
            FASTA,
            "--vcf",
            f"{ws}/g.fa",
            "--out",
            f"{ws}/o.vcf.gz",
        ],
        r"g\.fa: not a readable VCF, VCF\.gz or BCF file",
        _small_fasta,
    ),
    Case(
        "embed input = bigWig",
        lambda ws, w: ["embed", "--model", MODEL(w), "--input", f"{ws}/x.bw", "--out", f"{ws}/e.npy"],
        r"x\.bw:1: binary file, not FASTA",
        lambda ws: (ws / "x.bw").write_bytes(b"\x26\xfc\x8f\x88" + bytes(60)),
    ),
    Case(
        "finetune train = BED",
        lambda ws, w: [
            "finetune",
            "--baseline",
            "kmer",
            "--train",
            f"{w}/r.bed",
            "--test",
            f"{w}/r.bed",
            "--out",
            f"{ws}/ft",
        ],
        r"r\.bed: unknown task file type",
    ),
    Case(
        "compare test = FASTA",
        lambda ws, w: ["compare", "--runs", f"a={w}/run", "--test", f"a={ws}/g.fa", "--out", f"{ws}/c"],
        r"g\.fa:1: not valid JSON",
        _small_fasta,
    ),
    Case(
        "report eval = FASTA",
        lambda ws, w: ["report", "--eval", f"{ws}/g.fa", "--out", f"{ws}/rep/r.md"],
        r"g\.fa:1: not valid JSON",
        _small_fasta,
    ),
    Case(
        "sizes fasta = VCF",
        lambda ws, w: ["data", "sizes", "--fasta", VCF, "--out", f"{ws}/c.sizes"],
        r"hla_simulated\.vcf:1: not FASTA",
    ),
    Case(
        "pretrain intervals = FASTA",
        lambda ws, w: ["pretrain", *TRAIN, "--intervals", f"{ws}/g.fa", "--out", f"{ws}/o"],
        r"g\.fa:1: a BED line needs 4 columns",
        _small_fasta,
    ),
    # A model folder whose config.json does not match its weights, in every command that loads a model.
    *[
        Case(
            f"{argv[0]} config does not match weights",
            lambda ws, w, argv=argv: [a.format(ws=ws) for a in argv],
            r"m/config\.json: does not match the weights in .*m/model\.safetensors: tensor '[\w.]+' has shape "
            r"\[\d+(, \d+)*\] there, the config builds \[\d+(, \d+)*\]",
            _mismatched_model,
        )
        for argv in (
            ["eval", "--model", "{ws}/m", "--fasta", FASTA],
            ["boundaries", "--model", "{ws}/m", "--fasta", FASTA, "--out", "{ws}/x"],
            ["likelihood", "--model", "{ws}/m", "--fasta", FASTA, "--out", "{ws}/x"],
            ["score-variants", "--model", "{ws}/m", "--fasta", FASTA, "--vcf", VCF, "--out", "{ws}/o.vcf.gz"],
            ["embed", "--model", "{ws}/m", "--input", "{ws}/seqs.tsv", "--out", "{ws}/e.npy"],
            ["ism", "--model", "{ws}/m", "--fasta", FASTA, "--region", f"{CHROM}:5-9", "--out", "{ws}/i"],
            [
                "finetune",
                "--model",
                "{ws}/m",
                "--train",
                "{ws}/train.csv",
                "--test",
                "{ws}/test.csv",
                "--out",
                "{ws}/ft",
            ],
        )
    ],
    # merge-tracks: formats of another kind of tracks
    Case(
        "merge likelihood shards as bed",
        lambda ws, w: ["merge-tracks", "--shards", f"{w}/l1", f"{w}/l2", "--out", f"{ws}/m", "--formats", "bed"],
        r"--formats: 'bed' is not a format of likelihood tracks \(choose from bedgraph,bigwig\)",
    ),
    # make-task: a task that would be empty, one-class or unreadable
    Case(
        "make-task no window fits",
        lambda ws, w: ["make-task", "exon-starts", "--out", f"{ws}/t", "--width", "100000000"],
        r"make-task exon-starts: no train window of class '1' \(--width 100,000,000",
    ),
    Case(
        "make-task exons on no FASTA record",
        lambda ws, w: ["make-task", "exon-starts", "--out", f"{ws}/t", "--exons", f"{ws}/e.bed"],
        r"--exons .*e\.bed: none of its chromosomes \(chr6\) is a record of",
        lambda ws: (ws / "e.bed").write_text("chr6\t100\t200\tex1\t0\t+\n"),
    ),
    Case(
        "make-task CDS without strand",
        lambda ws, w: ["make-task", "exon-starts", "--out", f"{ws}/t", "--cds", f"{w}/r.bed"],
        r"--cds .*r\.bed: no line has a strand \(\+ or -\) in column 6",
    ),
    Case(
        "make-task label with a comma",
        lambda ws, w: [
            "make-task",
            "species",
            "--out",
            f"{ws}/t",
            "--genome",
            f"a,b={ws}/g.fa",
            "--genome",
            f"c={FASTA}",
        ],
        r"--genome a,b=.*: the label 'a,b' must be non-empty text without commas",
        _labels,
    ),
    Case(
        "make-task empty label",
        lambda ws, w: ["make-task", "species", "--out", f"{ws}/t", "--genome", f"={ws}/g.fa", "--genome", f"c={FASTA}"],
        r"--genome =.*: the label '' must be non-empty",
        _labels,
    ),
    Case(
        "make-task label given twice",
        lambda ws, w: [
            "make-task",
            "species",
            "--out",
            f"{ws}/t",
            "--genome",
            f"a={ws}/g.fa",
            "--genome",
            f"a={FASTA}",
        ],
        r"--genome a=.*: label 'a' is given twice",
        _labels,
    ),
    Case(
        "make-task one genome for two labels",
        lambda ws, w: [
            "make-task",
            "species",
            "--out",
            f"{ws}/t",
            "--genome",
            f"a={ws}/g.fa",
            "--genome",
            f"b={ws}/g.fa",
        ],
        r"--genome b=.*g\.fa: the same file as a=.*g\.fa",
        _labels,
    ),
    # finetune / eval: a limit or split that leaves nothing to learn or score
    Case(
        "finetune train-limit 1",
        lambda ws, w: [
            "finetune",
            "--baseline",
            "kmer",
            "--train",
            f"{ws}/train.csv",
            "--test",
            f"{ws}/test.csv",
            "--out",
            f"{ws}/ft",
            "--train-limit",
            "1",
        ],
        r"--train-limit 1: fewer training sequences than the 2 classes of .*train\.csv",
        _whole_task,
    ),
    Case(
        "eval split without intervals",
        lambda ws, w: ["eval", "--model", f"{w}/run", "--fasta", FASTA, "--intervals", f"{ws}/s.bed"],
        r"--split test: .*s\.bed has no 'test' interval \(splits with intervals: train, valid\)",
        lambda ws: (ws / "s.bed").write_text(f"{CHROM}\t0\t100000\ttrain\n{CHROM}\t100000\t120000\tvalid\n"),
    ),
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


# ---------------------------------------------------------------------------------------------------------
# Unusual but valid: the command succeeds, and every file of the user's is still there, unchanged.


@dataclass
class Kept:
    name: str
    runs: Callable[[Path, Path], list]  # (workspace, world) -> commands run in turn (each exits 0), or edits
    check: Callable[[Path, str, str], None]  # (workspace, stdout, stderr) after the last command
    setup: Callable[[Path], None] = lambda ws: None
    ours: tuple[str, ...] = ()  # files the setup made as an earlier run of ours would have: they may change


def _names(ws: Path, prefix: str = "P") -> list[str]:
    return sorted(p.name for p in ws.iterdir() if p.name.startswith(f"{prefix}."))


def _lk(w: Path, ws: Path, *extra: str) -> list[str]:
    return ["likelihood", "--model", MODEL(w), "--fasta", FASTA, "--regions", f"{w}/r.bed", "--out", f"{ws}/P", *extra]


def _bd(w: Path, ws: Path, *extra: str) -> list[str]:
    return ["boundaries", "--model", MODEL(w), "--fasta", FASTA, "--regions", f"{w}/r.bed", "--out", f"{ws}/P", *extra]


BOUNDARY_FILES = ["P.stage1.bed", "P.stage1.bedGraph"]
LIKELIHOOD_FILES = ["P.bits.fwd.bedGraph", "P.bits.fwd.bw"]
BOTH = sorted([*BOUNDARY_FILES, *LIKELIHOOD_FILES, "P.chrom.sizes", "P.tracks.json", "P.bits.json"])


def _manifest_names_others(ws: Path) -> None:
    """A likelihood manifest (as an older run or another tool left it) that names files which are not
    likelihood tracks of this prefix: one beside the folder, one by absolute path, one of another prefix."""
    import json

    (ws / "precious.txt").write_text("mine\n")
    (ws / "d").mkdir()
    (ws / "d" / "Q.bits.fwd.bw").write_text("another prefix\n")
    names = ["../precious.txt", str(ws / "precious.txt"), "Q.bits.fwd.bw", "P.bits.rev.bw"]
    manifest = {"kind": "hnet-genomics boundary tracks", "version": 2, "tracks": "likelihood", "files": names}
    (ws / "d" / "P.bits.json").write_text(json.dumps(manifest | {"records": {}}))
    (ws / "d" / "P.bits.rev.bw").write_text("the user's own file, named like a track\n")


def _legacy_likelihood_manifest(ws: Path) -> None:
    """What an older version wrote for likelihood tracks: the manifest at PREFIX.tracks.json, names only."""
    import json

    (ws / "P.bits.fwd.bedGraph").write_text("track type=bedGraph\n")
    manifest = {"kind": "hnet-genomics boundary tracks", "version": 1, "tracks": "likelihood"}
    (ws / "P.tracks.json").write_text(json.dumps(manifest | {"files": ["P.bits.fwd.bedGraph"], "shard": None}))


def _chunks(ws: Path) -> None:
    """Chunks of 5 bp tiling 10 kb around the region's first exons, as `boundaries` writes them."""
    first = int(next(line for line in Path(EXONS).read_text().splitlines()).split("\t")[1])
    start = max(first - 5000, 0)
    (ws / "c.bed").write_text("".join(f"{CHROM}\t{s}\t{s + 5}\n" for s in range(start, start + 10000, 5)))


def _check_both(ws: Path, out: str, err: str) -> None:
    assert _names(ws) == BOTH, err


def _check_user_file_kept(ws: Path, out: str, err: str) -> None:
    assert (ws / "P.stage1.bw").read_text() == "the user's own file\n"
    assert f"warning: {ws / 'P.stage1.bw'} was changed since the earlier run at this prefix (left as it is" in err
    assert not (ws / "P.stage1.bedGraph").exists()  # the earlier run's own file, unchanged: removed


def _check_foreign_names(ws: Path, out: str, err: str) -> None:
    assert (ws / "precious.txt").read_text() == "mine\n" and (ws / "d" / "Q.bits.fwd.bw").exists()
    assert (ws / "d" / "P.bits.rev.bw").read_text() == "the user's own file, named like a track\n"
    assert "lists '../precious.txt', which is not a likelihood track of" in err
    assert "P.bits.rev.bw was not recorded with its size and time by the earlier run" in err


def _check_legacy(ws: Path, out: str, err: str) -> None:
    import json

    assert json.loads((ws / "P.bits.json").read_text())["files"] == ["P.bits.fwd.bedGraph"]
    assert json.loads((ws / "P.tracks.json").read_text())["tracks"] == "boundaries"
    assert (ws / "P.bits.fwd.bedGraph").read_text() == "track type=bedGraph\n"


def _check_no_empty_bigwig(ws: Path, out: str, err: str) -> None:
    assert _names(ws) == ["P.bits.fwd.bedGraph", "P.bits.json", "P.chrom.sizes"]
    assert (ws / "P.bits.fwd.bedGraph").read_text().count("\n") == 1  # the track line, no value
    assert err.strip() == (
        f"hnet-genomics: {ws / 'P.bits.fwd.bw'} not written: the track has no data (no base of the regions has a "
        f"value) and a bigWig file cannot be empty"
    )
    assert out == ""


def _check_merged(ws: Path, out: str, err: str) -> None:
    folder = ws / "new" / "deeper"
    assert sorted(p.name for p in folder.iterdir()) == [
        "m.bits.fwd.bedGraph",
        "m.bits.fwd.bw",
        "m.bits.json",
        "m.chrom.sizes",
    ]


def _check_quiet(ws: Path, out: str, err: str) -> None:
    assert out == "" and err == ""
    assert "P.stage1.bed" in _names(ws)


def _check_no_boundary(ws: Path, out: str, err: str) -> None:
    import json

    assert "r.bed: no chunk boundary inside its regions (each region is one chunk)" in err
    assert all(r["ratio"] is None for r in json.loads((ws / "en" / "summary.json").read_text())["enrichment"])


KEPT = [
    Kept(
        "boundaries then likelihood at one prefix",
        lambda ws, w: [_bd(w, ws, "--formats", "bed,bedgraph"), _lk(w, ws), _lk(w, ws)],
        _check_both,
    ),
    Kept(
        "likelihood then boundaries at one prefix",
        lambda ws, w: [_lk(w, ws), _bd(w, ws, "--formats", "bed,bedgraph"), _bd(w, ws, "--formats", "bed,bedgraph")],
        _check_both,
    ),
    Kept(
        "a track the user replaced is not removed",
        lambda ws, w: [
            _bd(w, ws, "--formats", "bed,bedgraph,bigwig"),
            lambda: (ws / "P.stage1.bw").write_text("the user's own file\n"),
            _bd(w, ws, "--formats", "bed"),
        ],
        _check_user_file_kept,
    ),
    Kept(
        "a manifest naming files outside its tracks",
        lambda ws, w: [_lk(w, ws / "d")],
        _check_foreign_names,
        _manifest_names_others,
        ours=("P.bits.json",),
    ),
    Kept(
        "an older likelihood manifest at PREFIX.tracks.json",
        lambda ws, w: [_bd(w, ws, "--formats", "bed")],
        _check_legacy,
        _legacy_likelihood_manifest,
        ours=("P.tracks.json",),
    ),
    Kept(
        "likelihood of a region without a scorable base",
        lambda ws, w: [
            ["likelihood", "--model", MODEL(w), "--fasta", FASTA, "--regions", f"{ws}/one.bed", "--out", f"{ws}/P"]
            + ["--quiet"]
        ],
        _check_no_empty_bigwig,
        lambda ws: (ws / "one.bed").write_text(f"{CHROM}\t1000\t1001\n"),
    ),
    Kept(
        "merge likelihood shards into a new folder",
        lambda ws, w: [["merge-tracks", "--shards", f"{w}/l1", f"{w}/l2", "--out", f"{ws}/new/deeper/m", "--quiet"]],
        _check_merged,
    ),
    Kept(
        "enrichment of regions without a boundary",
        lambda ws, w: [["enrichment", "--boundaries", f"{w}/r.bed", "--annotation", EXONS, "--out", f"{ws}/en"]],
        _check_no_boundary,
    ),
    Kept("boundaries --quiet prints nothing", lambda ws, w: [_bd(w, ws, "--formats", "bed", "--quiet")], _check_quiet),
    Kept(
        "every output folder is created",
        lambda ws, w: [
            ["eval", "--model", f"{w}/run", "--fasta", f"{ws}/g.fa", "--out", f"{ws}/a/b/e.json", "--quiet"],
            ["data", "sizes", "--fasta", f"{ws}/g.fa", "--out", f"{ws}/c/d/g.sizes"],
            ["data", "split", "--fasta", f"{ws}/g.fa", "--out", f"{ws}/e/f/s.bed"],
            ["embed", "--model", MODEL(w), "--input", f"{ws}/seqs.tsv", "--out", f"{ws}/g/h/e.npy", "--quiet"],
            ["enrichment", "--boundaries", f"{ws}/c.bed", "--annotation", EXONS, "--out", f"{ws}/i/j"]
            + ["--permutations", "10"],
        ],
        lambda ws, out, err: [
            (ws / name).stat() for name in ("a/b/e.json", "c/d/g.sizes", "e/f/s.bed", "g/h/e.tsv", "i/j/summary.json")
        ],
        lambda ws: (_small_fasta(ws), _seqs_tsv(ws), _chunks(ws)),
    ),
]


@pytest.mark.parametrize("case", KEPT, ids=[c.name for c in KEPT])
def test_unusual_input_keeps_every_file_of_the_user(world, tmp_path, capsys, case):
    ws = tmp_path / "ws"
    ws.mkdir()
    case.setup(ws)
    user, shared_before = snapshot(ws), snapshot(world)
    for step in case.runs(ws, world):
        if callable(step):  # the user edits a file between two runs
            step()
            continue
        capsys.readouterr()
        assert main(step) == 0, capsys.readouterr().err
    captured = capsys.readouterr()
    case.check(ws, captured.out, captured.err)
    after = snapshot(ws)
    changed = {p for p, d in user.items() if after.get(p) != d and Path(p).name not in case.ours}
    assert changed == set()  # every file of the user's that the setup made: still there, unchanged
    assert snapshot(world) == shared_before

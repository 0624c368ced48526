"""Text runs in their own words: a corpus goes in with --text (pretrain and eval), and every log, metric, message
and model card counts bytes and bits per byte, never bases."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from helpers import FAST

from hnet_genomics.cli import main
from hnet_genomics.model.publish import gather

ROOT = Path(__file__).resolve().parents[1]
STEPS = 3


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    """A tiny byte-level H-Net trained on this project's own documentation, from the command line."""
    root = tmp_path_factory.mktemp("text")
    corpus = root / "corpus"
    corpus.mkdir()
    for name in ("README.md", "ARCHITECTURE.md"):
        (corpus / name).write_bytes((ROOT / name).read_bytes())
    (root / "tiny_text.yaml").write_text("base: dna/hnet_1stage_tiny\ndata:\n  kind: text\n  rc_prob: 0.0\n")
    sets = [
        x
        for s in FAST + [f"train.max_steps={STEPS}", "train.log_every=1"]
        for x in ("--set", s)
        if s != "data.rc_prob=0.5"
    ]
    argv = ["pretrain", "--config", str(root / "tiny_text.yaml"), "--text", str(corpus), "--out", str(root / "run")]
    return root, corpus, [*argv, *sets, "--quiet"]


def test_pretrain_on_text_reports_bits_per_byte_and_bytes(text_run, capsys):
    root, _, argv = text_run
    assert main(argv) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("val bits per byte ") and " bytes seen | " in line and "base" not in line
    metrics = json.loads((root / "run" / "metrics.json").read_text())
    assert metrics["unit"] == "byte" and metrics["bytes_seen"] == STEPS * 2 * 128
    assert metrics["val_bytes_scored"] > 0 and metrics["bytes_per_second"] > 0
    assert metrics["data"] | {"path": None} == {
        "path": None,
        "name": "corpus",
        "kind": "text",
        "records": 2,
        "size": sum(p.stat().st_size for p in (root / "corpus").iterdir()),
        "train": metrics["data"]["train"],
        "valid": metrics["data"]["valid"],
        "test": metrics["data"]["test"],
    }
    assert not [k for k in json.dumps(metrics).split('"') if "base" in k]  # no key or value speaks of bases
    with open(root / "run" / "logs" / "metrics.csv") as f:
        header = next(csv.reader(f))
    assert "bytes_seen" in header and not [k for k in header if "base" in k]


def test_eval_on_text_and_the_card_speak_of_bytes(text_run, capsys):
    root, corpus, _ = text_run
    if not (root / "run" / "metrics.json").exists():
        pytest.skip("needs the pretraining test's run")
    out = root / "test.json"
    assert main(["eval", "--model", str(root / "run"), "--text", str(corpus), "--out", str(out), "--quiet"]) == 0
    result = json.loads(out.read_text())
    assert result["unit"] == "byte" and result["bytes"] > 0 and "bases" not in result
    assert capsys.readouterr().out.strip().endswith(f"bits per byte over {result['bytes']:,} bytes")
    card = gather(root / "run", [out], "lab/docs-tiny").card
    metrics = json.loads((root / "run" / "metrics.json").read_text())
    assert f"| bytes seen | {metrics['bytes_seen']:,} |" in card and "| split | bits per byte | bytes scored |" in card
    assert f"| test | {result['bpb']:.4f} | {result['bytes']:,} |" in card
    assert "byte-level text language model" in card and "base" not in card.replace("hnet-genomics", "")


@pytest.mark.parametrize(
    "argv,names",
    [
        (
            ["pretrain", "--config", "dna/hnet_1stage_tiny", "--text", "{corpus}", "--out", "{ws}/o"],
            r"--text: .*reads DNA",
        ),
        (
            ["pretrain", "--config", "text/hnet_1stage_bytes", "--fasta", "{corpus}", "--out", "{ws}/o"],
            "--fasta: .*--text",
        ),
        (["eval", "--baseline", "markov", "--text", "{corpus}"], "--baseline markov: .*DNA bases"),
        (["pretrain", "--config", "text/hnet_1stage_bytes", "--out", "{ws}/o"], "one of the arguments --fasta --text"),
    ],
)
def test_text_and_genomes_do_not_mix(text_run, tmp_path, capsys, argv, names):
    import re

    corpus = text_run[1]
    try:
        rc = main([a.format(corpus=corpus, ws=tmp_path) for a in argv])
    except SystemExit as e:
        rc = e.code
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and re.search(names, err), err
    assert list(tmp_path.iterdir()) == []

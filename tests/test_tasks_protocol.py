"""Fine-tuning protocol on the real Oct4-vs-Mafk task: honest splits, rc-tta, k-mer baseline, CLI outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hnet_genomics import build_model, cli, load_config
from hnet_genomics.data import demo
from hnet_genomics.data.encoding import reverse_complement
from hnet_genomics.data.labelled import read_labelled
from hnet_genomics.tasks.finetune import (
    FinetuneSettings,
    finetune_seed,
    kmer_seed,
    load_classifier,
    predict,
    prepare_task,
    split_train_val,
)
from hnet_genomics.tasks.heads import SequenceClassifier
from hnet_genomics.tasks.kmer import kmer_counts


@pytest.fixture(scope="module")
def tfbs():
    return read_labelled(demo.TFBS_TRAIN), read_labelled(demo.TFBS_TEST)


SMALL = 80  # bp kept of each 200 bp site: the CPU reference kernels make full sites slow for unit tests


@pytest.fixture(scope="module")
def small_task(tfbs):
    """60 training and 16 test sites cut to their first 80 bp, so a tiny model trains in seconds."""
    train, test = tfbs
    rng = np.random.default_rng(0)
    pick = lambda d, n: sorted(rng.choice(len(d), n, replace=False).tolist())  # noqa: E731
    settings = FinetuneSettings(
        epochs=1, seeds=1, batch_size=16, lr=3e-3, val_fraction=0.1, max_len=SMALL, on_long="truncate"
    )
    with pytest.warns(UserWarning, match="truncating"):
        return prepare_task(train.subset(pick(train, 60)), test.subset(pick(test, 16)), settings), settings


@pytest.fixture(scope="module")
def fast_config(tmp_path_factory):
    """The shipped tiny H-Net with short SSD chunks (cheaper on CPU at these lengths), as a config file."""
    path = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    path.write_text("base: dna/hnet_1stage_tiny\nmodel: {ssm: {chunk_size: 16}}\n")
    return path


def test_validation_split_is_disjoint_covering_seeded_and_stratified(tfbs):
    y = np.array([int(lab) for lab in tfbs[0].labels])
    tr, va = split_train_val(y, 0.1, seed=3, stratify=True)
    assert not set(tr) & set(va) and len(tr) + len(va) == len(y)
    assert abs(len(va) - 0.1 * len(y)) <= 1
    assert abs(y[va].mean() - y.mean()) < 0.01
    tr2, va2 = split_train_val(y, 0.1, seed=3, stratify=True)
    assert np.array_equal(va, va2) and np.array_equal(tr, tr2)
    assert not np.array_equal(va, split_train_val(y, 0.1, seed=4, stratify=True)[1])


def test_rc_tta_equals_the_mean_of_explicit_reverse_complement_predictions(small_task, fast_config):
    task, _ = small_task
    torch.manual_seed(0)
    model = SequenceClassifier(build_model(load_config(fast_config)), 2, "mean")
    seqs = task.test.sequences[:12]
    fwd = predict(model, seqs, "classification", batch_size=5)
    rev = predict(model, [reverse_complement(s) for s in seqs], "classification", batch_size=5)
    both = predict(model, seqs, "classification", rc_tta=True, batch_size=5)
    np.testing.assert_allclose(both, (fwd + rev) / 2, atol=1e-6)
    assert not np.allclose(fwd, rev, atol=1e-4)  # the strands really disagree, so the average is informative


def test_kmer_counts_skip_windows_with_ambiguous_bases():
    counts = kmer_counts([b"ACGTNACGta"], k=3)[0]
    index = {"ACG": 6, "CGT": 27, "GTA": 44}
    assert counts.sum() == 5  # ACG, CGT, ACG, CGT, GTA; the three windows over N are skipped
    assert counts[index["ACG"]] == 2 and counts[index["CGT"]] == 2 and counts[index["GTA"]] == 1


def test_kmer_baseline_beats_chance_on_oct4_vs_mafk(tfbs):
    settings = FinetuneSettings(seeds=1, train_limit=1000)
    task = prepare_task(*tfbs, settings)
    result = kmer_seed(task, settings, seed=0)
    assert result["n_train"] == 1000
    assert result["test_accuracy"] > 0.7 and result["test_mcc"] > 0.4 and result["test_auroc"] > 0.8


def test_best_validation_epoch_is_kept_and_frozen_backbone_is_unchanged(small_task, fast_config):
    task, settings = small_task
    torch.manual_seed(0)
    backbone = build_model(load_config(fast_config))
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    probe = FinetuneSettings(**{**settings.__dict__, "freeze_backbone": True, "epochs": 3, "lr": 1e-2})
    result, model = finetune_seed(task, lambda: backbone, probe, seed=0)
    assert all(torch.equal(before[k], v) for k, v in model.backbone.state_dict().items())
    assert 1 <= result["best_epoch"] <= 3 and result["n_val"] == 6
    va = split_train_val(task.y_train, 0.1, seed=0, stratify=True)[1]
    val = predict(model, [task.train.sequences[i] for i in va], "classification")
    assert result["val_accuracy"] == pytest.approx(float((val.argmax(1) == task.y_train[va]).mean()))


def _write_csv(path, data):
    path.write_text(
        "sequence,label,name\n"
        + "".join(f"{s.decode()},{lab},{n}\n" for s, lab, n in zip(data.sequences, data.labels, data.names))
    )


def test_finetune_command_writes_per_seed_and_mean_metrics_and_a_reloadable_model(
    small_task, fast_config, tmp_path, capsys
):
    task, _ = small_task
    _write_csv(tmp_path / "train.csv", task.train)
    _write_csv(tmp_path / "test.csv", task.test)
    out = tmp_path / "run"
    rc = cli.main(
        [
            "finetune",
            "--config",
            str(fast_config),
            "--train",
            str(tmp_path / "train.csv"),
            "--test",
            str(tmp_path / "test.csv"),
            "--out",
            str(out),
            "--epochs",
            "1",
            "--seeds",
            "2",
            "--batch-size",
            "16",
            "--pooling",
            "chunk",
            "--rc-tta",
            "--baseline",
            "kmer",
        ]
    )
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for name in ("model", "kmer"):
        res = metrics["results"][name]
        assert [r["seed"] for r in res["seeds"]] == [0, 1]
        for key in ("test_accuracy", "test_mcc", "test_f1", "test_auroc", "val_accuracy"):
            assert key in res["mean"] and key in res["std"] and all(key in r for r in res["seeds"])
    model, meta = load_classifier(out / "best")
    assert meta["classes"] == ["0", "1"] and meta["pooling"] == "chunk"
    assert meta["seed"] == metrics["results"]["model"]["saved_seed"]
    probs = predict(model, task.test.sequences, "classification", rc_tta=True)
    saved = next(r for r in metrics["results"]["model"]["seeds"] if r["seed"] == meta["seed"])
    assert float((probs.argmax(1) == task.y_test).mean()) == pytest.approx(saved["test_accuracy"])
    assert "kmer: test_accuracy=" in capsys.readouterr().out

    kmer_only = tmp_path / "kmer_only"
    assert (
        cli.main(
            [
                "finetune",
                "--baseline",
                "kmer",
                "--seeds",
                "1",
                "--train",
                str(tmp_path / "train.csv"),
                "--test",
                str(tmp_path / "test.csv"),
                "--out",
                str(kmer_only),
            ]
        )
        == 0
    )
    assert list(json.loads((kmer_only / "metrics.json").read_text())["results"]) == ["kmer"]
    assert not (kmer_only / "best").exists()


def test_pretrained_model_directory_is_fine_tuned_as_a_linear_probe(small_task, fast_config, tmp_path):
    task, _ = small_task
    _write_csv(tmp_path / "train.csv", task.train)
    _write_csv(tmp_path / "test.csv", task.test)
    torch.manual_seed(0)
    pretrained = build_model(load_config(fast_config))
    pretrained.trained_context = 100  # as `pretrain` records it: the default --max-len of a --model
    pretrained.save_pretrained(tmp_path / "pretrained")
    assert (
        cli.main(
            [
                "finetune",
                "--model",
                str(tmp_path / "pretrained"),
                "--train",
                str(tmp_path / "train.csv"),
                "--test",
                str(tmp_path / "test.csv"),
                "--out",
                str(tmp_path / "run"),
                "--seeds",
                "1",
                "--epochs",
                "2",
                "--freeze-backbone",
                "--pooling",
                "last",
                "--on-long",
                "truncate",
            ]
        )
        == 0
    )
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["settings"]["backbone"].startswith("pretrained:") and metrics["settings"]["max_len"] == 100
    model, _ = load_classifier(tmp_path / "run" / "best")
    for name, tensor in pretrained.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[name], tensor), name


def test_model_directory_that_is_not_a_checkpoint_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a model")
    csv = tmp_path / "t.csv"
    csv.write_text("sequence,label\nACGT,0\nACGA,1\n")
    rc = cli.main(
        ["finetune", "--model", str(tmp_path), "--train", str(csv), "--test", str(csv), "--out", str(tmp_path / "out")]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "not a saved model" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")
def test_finetune_on_an_absent_gpu_is_a_one_line_error(tmp_path, capsys):
    csv = tmp_path / "t.csv"
    csv.write_text("sequence,label\nACGT,0\nACGA,1\n")
    rc = cli.main(
        [
            "finetune",
            "--baseline",
            "kmer",
            "--train",
            str(csv),
            "--test",
            str(csv),
            "--device",
            "cuda",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "torch sees no CUDA GPU" in err and len(err.splitlines()) == 1


@pytest.mark.gpu
@pytest.mark.parametrize("freeze", [False, True])
def test_gpu_fine_tuning_returns_a_cpu_model_that_predicts_as_it_scored(small_task, fast_config, freeze):
    task, settings = small_task
    torch.manual_seed(0)
    backbone = build_model(load_config(fast_config))
    on_gpu = FinetuneSettings(**{**settings.__dict__, "device": "cuda", "freeze_backbone": freeze, "rc_tta": True})
    result, model = finetune_seed(task, lambda: backbone, on_gpu, seed=0)
    assert next(model.parameters()).device.type == "cpu"
    probs = predict(model, task.test.sequences, "classification", rc_tta=True)
    # GPU and CPU kernels round differently: allow one of the 16 test sites to fall on the other side of 0.5.
    accuracy = float((probs.argmax(1) == task.y_test).mean())
    assert accuracy == pytest.approx(result["test_accuracy"], abs=1 / len(task.y_test) + 1e-9)

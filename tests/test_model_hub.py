"""Models by Hugging Face Hub repo id, read from a real Hub cache layout on disk (``models--org--name/blobs``,
``snapshots/<commit>``, ``refs/<branch>``) with ``HF_HUB_OFFLINE=1``: the same model as its folder, revision
pinning, a local folder winning over a repo id. Pushing goes through huggingface_hub's ``HfApi`` with its three
network calls replaced by a stand-in that files each commit into that cache, so a pushed model is read back by
repo id, and its model card's figures are checked against the run's own files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import huggingface_hub
import pytest
import torch
from helpers import FAST, tiny_config

from hnet_genomics import from_pretrained
from hnet_genomics.cli import main
from hnet_genomics.data import demo
from hnet_genomics.errors import CheckpointError, ConfigError
from hnet_genomics.model.lm import HNetLM

FASTA = str(demo.HUMAN_FASTA)
CHROM = "BA000025.2"


def add_commit(cache: Path, repo: str, folder: Path, refs: tuple[str, ...] = ("main",)) -> str:
    """File ``folder`` into a Hub cache as huggingface_hub lays out a download: content-addressed blobs, a snapshot
    of relative symlinks per commit, and refs naming commits. Returns the commit hash."""
    root = cache / f"models--{repo.replace('/', '--')}"
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    commit = hashlib.sha1(b"".join(p.read_bytes() for p in files) + repo.encode()).hexdigest()
    for path in files:
        data = path.read_bytes()
        blob = root / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = root / "snapshots" / commit / path.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (root / "refs").mkdir(parents=True, exist_ok=True)
    for ref in refs:
        (root / "refs" / ref).write_text(commit)
    return commit


def tiny_model(seed: int) -> HNetLM:
    torch.manual_seed(seed)
    model = HNetLM(tiny_config(1).model).eval()
    model.trained_context = 128
    return model


def same_weights(a: HNetLM, b: HNetLM) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty Hub cache that the environment points at, with downloads off."""
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


@pytest.fixture
def two_versions(hub_cache, tmp_path):
    """org/tiny with two commits: v1 (tag) and main, different weights."""
    models = {}
    for name, seed, refs in (("v1", 1, ("v1",)), ("main", 2, ("main",))):
        tiny_model(seed).save_pretrained(tmp_path / name)
        models[name] = (add_commit(hub_cache, "org/tiny", tmp_path / name, refs), tmp_path / name)
    return models


def test_a_repo_id_loads_the_same_model_as_its_folder(two_versions):
    commit, folder = two_versions["main"]
    by_id, by_folder = from_pretrained("org/tiny"), from_pretrained(folder)
    assert same_weights(by_id, by_folder) and by_id.trained_context == 128
    ids = torch.tensor([list(b"ACGTTGCAACGGTACCATGA")])
    with torch.no_grad():
        assert torch.equal(by_id(ids).logits, by_folder(ids).logits)


def test_revisions_pin_a_version(two_versions):
    (v1, v1_dir), (main_commit, _) = two_versions["v1"], two_versions["main"]
    v1_model = HNetLM.from_pretrained(v1_dir)
    assert same_weights(HNetLM.from_pretrained("org/tiny@v1"), v1_model)  # a tag
    assert same_weights(from_pretrained("org/tiny", revision=v1), v1_model)  # a commit, through the package face
    assert not same_weights(HNetLM.from_pretrained("org/tiny"), v1_model)  # main is the other commit
    assert same_weights(HNetLM.from_pretrained("org/tiny", revision=main_commit), HNetLM.from_pretrained("org/tiny"))
    with pytest.raises(ConfigError, match="revision 'v1' in the name and revision 'main' given"):
        HNetLM.from_pretrained("org/tiny@v1", revision="main")


def test_a_local_folder_wins_over_a_repo_id_of_the_same_name(two_versions, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny_model(3).save_pretrained(Path("org") / "tiny")
    assert same_weights(HNetLM.from_pretrained("org/tiny"), tiny_model(3))


def test_offline_without_the_model_in_the_cache_is_one_clear_error(hub_cache, tmp_path):
    with pytest.raises(CheckpointError) as e:
        HNetLM.from_pretrained("org/absent")
    assert "org/absent: no such folder, and not in the Hugging Face cache" in str(e.value)
    assert "HF_HUB_OFFLINE" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(CheckpointError, match="at revision 'v9'"):
        HNetLM.from_pretrained("org/absent@v9", local_files_only=True)


def test_a_cache_named_by_argument_and_local_files_only(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    tiny_model(4).save_pretrained(tmp_path / "m")
    add_commit(tmp_path / "elsewhere", "org/tiny", tmp_path / "m")
    model = HNetLM.from_pretrained("org/tiny", cache_dir=tmp_path / "elsewhere", local_files_only=True)
    assert same_weights(model, tiny_model(4))


def test_every_model_option_takes_a_repo_id(two_versions, tmp_path, capsys):
    """boundaries by repo id writes what it writes from the folder (the export identity hashes the weights)."""
    (tmp_path / "r.bed").write_text(f"{CHROM}\t1000\t1600\n")
    common = ["--fasta", FASTA, "--regions", str(tmp_path / "r.bed"), "--formats", "bed", "--quiet"]
    assert main(["boundaries", "--model", "org/tiny@v1", "--out", str(tmp_path / "a" / "t"), *common]) == 0
    assert main(["boundaries", "--model", str(two_versions["v1"][1]), "--out", str(tmp_path / "b" / "t"), *common]) == 0
    assert (tmp_path / "a" / "t.stage1.bed").read_text() == (tmp_path / "b" / "t.stage1.bed").read_text()
    ids = (
        json.loads((tmp_path / "a" / "t.tracks.json").read_text()),
        json.loads((tmp_path / "b" / "t.tracks.json").read_text()),
    )
    assert ids[0]["export"] == ids[1]["export"]
    capsys.readouterr()
    assert main(["boundaries", "--model", "org/absent", "--out", str(tmp_path / "c" / "t"), *common]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hnet-genomics: error: --model org/absent: no such folder") and "\n" not in err


# ---- pushing ------------------------------------------------------------------------------------------------


class FakeHub:
    """HfApi's create_repo, create_branch and upload_folder, filing every commit into a local Hub cache."""

    def __init__(self, cache: Path):
        self.cache, self.calls, self.commits = cache, [], []

    def install(self, monkeypatch):
        hub = self

        def create_repo(api, repo_id, **kw):
            hub.calls.append(("create_repo", repo_id, kw.get("private")))

        def create_branch(api, repo_id, branch, **kw):
            hub.calls.append(("create_branch", repo_id, branch))

        def upload_folder(api, *, repo_id, folder_path, revision=None, commit_message=None, **kw):
            files = {
                p.relative_to(folder_path).as_posix(): p.read_bytes()
                for p in Path(folder_path).rglob("*")
                if p.is_file()
            }
            hub.commits.append({"repo": repo_id, "revision": revision, "message": commit_message, "files": files})
            commit = add_commit(hub.cache, repo_id, Path(folder_path), (revision or "main",))
            return huggingface_hub.CommitInfo(
                commit_url=f"https://huggingface.co/{repo_id}/commit/{commit}",
                commit_message=commit_message,
                commit_description="",
                oid=commit,
            )

        monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
        monkeypatch.setattr(huggingface_hub.HfApi, "create_branch", create_branch)
        monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
        return self


@pytest.fixture
def fake_hub(hub_cache, monkeypatch):
    return FakeHub(hub_cache).install(monkeypatch)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A 2-step pretraining run started from the command line, and its test-split evaluation."""
    root = tmp_path_factory.mktemp("run")
    sets = [x for s in FAST + ["train.max_steps=2"] for x in ("--set", s)]
    argv = ["pretrain", "--config", "dna/hnet_1stage_tiny", "--fasta", FASTA, "--out", str(root / "run"), *sets]
    assert main([*argv, "--quiet"]) == 0
    (root / "s.bed").write_text(
        f"{CHROM}\t0\t60000\ttrain\n{CHROM}\t60000\t62000\tvalid\n{CHROM}\t62000\t64000\ttest\n"
    )
    ev = ["eval", "--model", str(root / "run"), "--fasta", FASTA, "--intervals", str(root / "s.bed"), "--quiet"]
    assert main([*ev, "--out", str(root / "test.json")]) == 0
    return root


def test_push_uploads_the_model_its_run_record_and_a_card_made_from_them(trained_run, fake_hub):
    run = trained_run / "run"
    argv = ["push", "--model", str(run), "--repo", "lab/hla-tiny", "--eval", str(trained_run / "test.json")]
    assert main(argv) == 0
    (commit,) = fake_hub.commits
    assert sorted(commit["files"]) == [
        "README.md",
        "config.json",
        "config.yaml",
        "encoding.json",  # how training read sequence: a downloaded model reads it the same way
        "eval/test.json",
        "metrics.json",
        "model.safetensors",
        "training.json",
    ]
    assert commit["files"]["model.safetensors"] == (run / "model" / "model.safetensors").read_bytes()
    assert fake_hub.calls == [("create_repo", "lab/hla-tiny", None)]

    card = commit["files"]["README.md"].decode()
    metrics = json.loads((run / "metrics.json").read_text())
    test = json.loads((trained_run / "test.json").read_text())
    assert metrics["command"].startswith("hnet-genomics pretrain --config dna/hnet_1stage_tiny --fasta ")
    expected = [
        f"| valid (end of training) | {metrics['val_bpb']:.4f} | {metrics['val_bases_scored']:,} |",
        f"| test | {test['bpb']:.4f} | {test['bases']:,} |",
        f"| bases seen | {metrics['bases_seen']:,} |",
        f"| optimizer steps | {metrics['steps']:,} (weights of step {metrics['selected_step']:,}",
        f"| parameters | {metrics['params']:,} |",
        f"`{metrics['data']['name']}`, {metrics['data']['size']:,} bases in 1 record(s)",
        f"| trained window | {metrics['seq_len']:,} bases |",
        ", ".join(f"{r:.2f}" for r in metrics["compression_ratios"]),
        metrics["command"],
        'from_pretrained("lab/hla-tiny")',
        "library_name: hnet-genomics",
        "bits per base",
    ]
    assert [line for line in expected if line not in card] == []
    # what was pushed is what loads by repo id, and `eval` finds the run's config in the repo
    assert same_weights(from_pretrained("lab/hla-tiny"), HNetLM.from_pretrained(run / "model"))
    again = ["eval", "--model", "lab/hla-tiny", "--fasta", FASTA, "--intervals", str(trained_run / "s.bed")]
    assert main([*again, "--out", str(trained_run / "again.json"), "--quiet"]) == 0
    result = json.loads((trained_run / "again.json").read_text())
    assert result["bpb"] == test["bpb"] and result["model"] == "lab/hla-tiny"


def test_save_pretrained_pushes_to_a_branch(fake_hub, tmp_path):
    model = tiny_model(5)
    url = model.save_pretrained(tmp_path / "m", push_to_hub="lab/x", revision="dev", private=True)
    (commit,) = fake_hub.commits
    assert url.startswith("https://huggingface.co/lab/x/commit/") and commit["revision"] == "dev"
    assert fake_hub.calls == [("create_repo", "lab/x", True), ("create_branch", "lab/x", "dev")]
    assert sorted(commit["files"]) == ["README.md", "config.json", "model.safetensors", "training.json"]
    card = commit["files"]["README.md"].decode()
    assert f"| parameters | {model.num_parameters():,} |" in card and "| trained window | 128 bases |" in card
    assert "## Training" not in card  # no run, so no training figures: nothing is made up
    assert same_weights(HNetLM.from_pretrained("lab/x@dev"), model)


def test_push_dry_run_lists_and_prints_without_uploading(trained_run, capsys, monkeypatch):
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", lambda *a, **k: pytest.fail("uploaded"))
    assert main(["push", "--model", str(trained_run / "run" / "model"), "--repo", "lab/x", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^metrics\.json\t.*run/metrics\.json$", out, re.M) and "# lab/x" in out


def test_an_upload_that_fails_is_one_line(fake_hub, tmp_path, monkeypatch, capsys):
    def unreachable(*a, **k):
        raise ConnectionError("[Errno 101] Network is unreachable")

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", unreachable)
    tiny_model(6).save_pretrained(tmp_path / "m")
    assert main(["push", "--model", str(tmp_path / "m"), "--repo", "lab/x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "hnet-genomics: error: lab/x: upload to the Hugging Face Hub failed "
        "(ConnectionError: [Errno 101] Network is unreachable)"
    )


def test_without_huggingface_hub_the_extra_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(__import__("sys").modules, "huggingface_hub", None)  # as if not installed
    tiny_model(7).save_pretrained(tmp_path / "m")
    assert main(["push", "--model", str(tmp_path / "m"), "--repo", "lab/x"]) == 2
    assert 'pip install "hnet-genomics[hub]"' in capsys.readouterr().err
    with pytest.raises(CheckpointError, match=r"org/name: no such folder \(reading it as a Hugging Face repo id needs"):
        HNetLM.from_pretrained("org/name")
    assert same_weights(HNetLM.from_pretrained(tmp_path / "m"), tiny_model(7))  # folders need nothing more


def test_repo_ids_are_told_apart_from_paths():
    from hnet_genomics.model.hub import is_repo_id, split_revision

    assert [is_repo_id(s) for s in ("org/name", "org/name@v1.0", "a-b/c.d_e")] == [True] * 3
    assert [is_repo_id(s) for s in ("/abs/path", "./org/name", "org/name/sub", "name", "org/", "~/x")] == [False] * 6
    assert split_revision("org/name@0123abc") == ("org/name", "0123abc") and split_revision("org/n") == ("org/n", None)
    with pytest.raises(ConfigError, match="org/name@: an empty revision"):
        HNetLM.from_pretrained("org/name@")

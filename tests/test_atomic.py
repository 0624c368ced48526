"""The one atomic writer, crash window by crash window: a reader always finds the old or the new version whole,
a later write removes what a killed one left, and nothing of the user's is ever replaced."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hnet_genomics import atomic, build_model, from_pretrained, load_config
from hnet_genomics.atomic import (
    atomic_dir,
    atomic_path,
    output_dir,
    recover_dir,
    sweep_stale,
    write_json_atomic,
    write_text_atomic,
)
from hnet_genomics.errors import OutputError


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name or ".old-" in p.name)


def test_failed_write_keeps_the_old_file_and_removes_its_temporary_and_new_parents(tmp_path):
    dest = tmp_path / "a.txt"
    dest.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk on fire")
    assert dest.read_text() == "old" and leftovers(tmp_path) == []
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "new" / "deeper" / "b.txt") as tmp:
            raise RuntimeError
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]  # the folders it made are gone again
    write_text_atomic(tmp_path / "made" / "c.txt", "new")  # parents are created for a write that succeeds
    assert (tmp_path / "made" / "c.txt").read_text() == "new"


def test_files_get_the_umask_permissions_not_mkstemps_0600(tmp_path):
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "shared.txt", "x")
        with atomic_dir(tmp_path / "model") as d:
            (d / "f").write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "shared.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == 0o755


def test_json_is_strict_nan_becomes_null(tmp_path):
    write_json_atomic(tmp_path / "m.json", {"bpb": float("nan"), "rates": [1.0, float("inf")], "n": 3})
    assert json.loads((tmp_path / "m.json").read_text()) == {"bpb": None, "rates": [1.0, None], "n": 3}
    assert "NaN" not in (tmp_path / "m.json").read_text()


_SLOW_WRITER = """
import sys, time
from hnet_genomics.atomic import atomic_path
with atomic_path(sys.argv[1]) as tmp, open(tmp, "w") as f:
    f.write("partial"); f.flush()
    print("writing", flush=True)
    time.sleep(60)
"""


def test_sigkill_mid_write_leaves_the_old_file_and_the_next_write_removes_the_temporary(tmp_path):
    dest = tmp_path / "track.bed"
    dest.write_text("old")
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(dest)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    live = leftovers(tmp_path)
    assert len(live) == 1
    sweep_stale([dest])
    assert leftovers(tmp_path) == live  # a running writer's temporary is never touched
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert dest.read_text() == "old" and leftovers(tmp_path) == live
    write_text_atomic(dest, "new")
    assert dest.read_text() == "new" and leftovers(tmp_path) == []


# A child process saves a model over an existing one and dies (os._exit, as SIGKILL would leave it) right after
# the N-th rename or right before removing the previous version; EXCHANGE=0 forces the two-rename path.
_CRASHING_SAVE = """
import os, sys, torch
from hnet_genomics import build_model, load_config
from hnet_genomics import atomic
crash_after, exchange = int(sys.argv[2]), sys.argv[3] == "1"
if not exchange:
    atomic._exchange = lambda a, b: False
renames = []
real_rename = os.rename
def rename(a, b):
    real_rename(a, b)
    renames.append(b)
    if len(renames) == crash_after:
        os._exit(9)
atomic.os.rename = rename
atomic._remove = lambda p: os._exit(9) if crash_after == 0 else None
torch.manual_seed(1)
model = build_model(load_config("dna/hnet_1stage_tiny"))
model.trained_context = 777
model.save_pretrained(sys.argv[1])
os._exit(0)
"""


@pytest.fixture(scope="module")
def old_model():
    torch.manual_seed(0)
    model = build_model(load_config("dna/hnet_1stage_tiny"))
    model.trained_context = 111
    return model


@pytest.mark.parametrize(
    "exchange,crash_after,survivor",
    [
        (True, 0, "new"),  # exchanged, died before removing the old version (now under the temporary name)
        (False, 1, "old"),  # old version renamed aside, died before the new one was renamed in
        (False, 0, "new"),  # both renames done, died before removing the old version
    ],
)
def test_a_save_killed_in_any_window_leaves_a_whole_model_and_the_next_save_works(
    tmp_path, old_model, exchange, crash_after, survivor
):
    if exchange and not atomic._exchange(tmp_path, tmp_path):
        pytest.skip("this file system cannot exchange two paths")
    dest = tmp_path / "model"
    old_model.save_pretrained(dest)
    proc = subprocess.run(
        [sys.executable, "-c", _CRASHING_SAVE, str(dest), str(crash_after), "1" if exchange else "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 9, proc.stderr
    assert leftovers(tmp_path)  # the killed save left something behind
    loaded = from_pretrained(dest)  # restores a set-aside old version if the new one never arrived
    assert loaded.trained_context == {"old": 111, "new": 777}[survivor]
    old_model.save_pretrained(dest)  # never stuck on what the killed save left
    assert from_pretrained(dest).trained_context == 111
    assert leftovers(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_recover_dir_puts_back_a_folder_set_aside_by_a_dead_process(tmp_path):
    aside = tmp_path / f".m.old-{atomic._HOST}-999999999-0123abcd"
    aside.mkdir()
    (aside / "config.json").write_text("{}")
    assert recover_dir(tmp_path / "m") == tmp_path / "m"
    assert (tmp_path / "m" / "config.json").exists() and leftovers(tmp_path) == []


def test_a_folder_holding_files_the_writer_did_not_write_is_never_replaced(tmp_path, old_model):
    dest = tmp_path / "model"
    old_model.save_pretrained(dest)
    (dest / "README.txt").write_text("my notes about this model\n")
    with pytest.raises(OutputError, match=r"model: holds files this command did not write \(README\.txt\)"):
        old_model.save_pretrained(dest)
    assert (dest / "README.txt").exists() and (dest / "model.safetensors").exists() and leftovers(tmp_path) == []


def test_output_dir_removes_only_the_empty_folders_it_made(tmp_path):
    (tmp_path / "keep").mkdir()
    with pytest.raises(ValueError):
        with output_dir(tmp_path / "keep" / "a" / "b"):
            raise ValueError
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep"] and list((tmp_path / "keep").iterdir()) == []
    with pytest.raises(ValueError):
        with output_dir(tmp_path / "c") as d:
            (d / "result.txt").write_text("written before the failure")
            raise ValueError
    assert (tmp_path / "c" / "result.txt").exists()  # not empty: nothing is deleted


def test_every_writer_in_the_package_goes_through_the_one_atomic_writer():
    """No second temp-then-rename helper, mkdtemp/mkstemp (0700/0600) or rmtree-then-replace in the package."""
    root = Path(__file__).resolve().parents[1] / "hnet_genomics"
    offenders = []
    for path in root.rglob("*.py"):
        if path.name == "atomic.py":
            continue
        text = path.read_text()
        for needle in (
            "os.replace(",
            "os.rename(",
            "mkdtemp(",
            "mkstemp(",
            "shutil.rmtree(",
            ".write_text(",
            ".write_bytes(",
        ):
            for line in text.splitlines():
                if needle in line and "tmp" not in line.split(needle)[0] and not line.strip().startswith("#"):
                    offenders.append(f"{path.relative_to(root)}: {line.strip()}")
    assert offenders == [], "\n".join(offenders)

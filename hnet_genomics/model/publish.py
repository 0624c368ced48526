"""Push a saved model to the Hugging Face Hub: its files, its run's record and a model card, in one commit.

The repository receives the model folder's files (``config.json``, ``model.safetensors``, ``training.json``, ...),
the pretraining run's ``metrics.json`` and ``config.yaml`` when the model came from one (``eval`` then reads the
run's data policy and window from the repo as it does from the run folder), each ``eval --out`` result as
``eval/NAME.json``, and ``README.md``, the card written from those files (``card.py``). They are gathered in a
temporary folder; nothing beside the model is written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hnet_genomics.errors import CheckpointError, DataError
from hnet_genomics.model.card import RunFiles, model_card, read_eval, read_json

RUN_FILES = ("metrics.json", "config.yaml")  # what a pretraining run writes beside model/ and the card reads


@dataclass
class Upload:
    files: dict[str, Path]  # path in the repo -> local file
    card: str


def find_run(path: str | os.PathLike) -> tuple[Path, Path | None]:
    """(model folder, run folder or None) for a pretraining run folder or a saved model folder."""
    path = Path(path)
    if (path / "model" / "config.json").is_file():
        return path / "model", path
    if (path / "config.json").is_file():
        return path, (path.parent if (path.parent / "metrics.json").is_file() else None)
    raise CheckpointError(f"{path}: neither a saved model (config.json) nor a pretraining run folder (model/)")


def gather(
    model_path: str | os.PathLike, evals: Sequence[str | os.PathLike] = (), repo_id: str | None = None
) -> Upload:
    """Everything the repository will hold, and its card."""
    model_dir, run_dir = find_run(model_path)
    for required in ("config.json", "model.safetensors"):
        if not (model_dir / required).is_file():
            raise CheckpointError(f"{model_dir}: not a saved model (no {required})")
    files = {p.name: p for p in sorted(model_dir.iterdir()) if p.is_file() and not p.name.startswith(".")}
    if run_dir is not None:
        files |= {name: run_dir / name for name in RUN_FILES if (run_dir / name).is_file()}
    run = RunFiles(model_dir=model_dir, config=read_json(model_dir / "config.json", "a model config"))
    if (model_dir / "training.json").is_file():
        run.training = read_json(model_dir / "training.json", "training.json")
    if (model_dir / "encoding.json").is_file():
        run.encoding = read_json(model_dir / "encoding.json", "encoding.json")
    if "metrics.json" in files:
        run.metrics = read_json(files["metrics.json"], "a pretraining run's metrics")
    for e in evals:
        path = Path(e)
        name = f"eval/{path.stem}.json"
        if name in files:
            raise DataError(f"--eval {path}: a second eval result named {path.stem}.json; rename one of them")
        run.evals.append((f"{path.stem}.json", read_eval(path)))
        files[name] = path
    return Upload(files, model_card(run, repo_id))


def push(
    model_path: str | os.PathLike,
    repo_id: str,
    evals: Sequence[str | os.PathLike] = (),
    revision: str | None = None,
    private: bool | None = None,
    commit_message: str | None = None,
    token: str | None = None,
) -> str:
    """Upload the model, its run's record and its card to ``repo_id``; returns the commit URL."""
    from hnet_genomics.model import hub

    upload = gather(model_path, evals, repo_id)
    with tempfile.TemporaryDirectory(prefix="hnet-push-") as staging:
        tmp = Path(staging)  # the upload's staging folder, removed afterwards
        for name, source in upload.files.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, tmp / name)  # no second copy of the weights where the file system allows
            except OSError:
                shutil.copyfile(source, tmp / name)
        (tmp / "README.md").write_text(upload.card)
        return hub.upload_folder(
            tmp,
            repo_id,
            revision=revision,
            private=private,
            commit_message=commit_message or f"Upload {Path(model_path).name} with hnet-genomics",
            token=token,
        )

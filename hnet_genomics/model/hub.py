"""Models on the Hugging Face Hub: a repo id resolved to a local snapshot folder, a folder uploaded to a repo.

``org/name`` (optionally ``org/name@revision``) is downloaded once into the Hugging Face cache
(``HF_HUB_CACHE``, else ``HF_HOME/hub``, else ``~/.cache/huggingface/hub``) and read from there afterwards; with
``HF_HUB_OFFLINE=1`` or ``local_files_only`` nothing is fetched. A local folder always wins over a repo id that
is spelled the same. ``huggingface_hub`` is optional: ``pip install "hnet-genomics[hub]"``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from hnet_genomics.atomic import recover_dir
from hnet_genomics.errors import CheckpointError, ConfigError

HUB_EXTRA = 'pip install "hnet-genomics[hub]"'
# the Hub's repo names: an owner and a name of letters, digits, '-', '_' and '.', at most 96 characters each
REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")
# what a model repository of this package holds (a snapshot downloads nothing else, e.g. an original .pt)
MODEL_PATTERNS = ["*.json", "*.yaml", "*.safetensors", "README.md", "eval/*.json"]
TRUE = {"1", "ON", "YES", "TRUE"}


def huggingface_hub():
    """The optional dependency, or one line saying how to install it."""
    try:
        import huggingface_hub
    except ImportError:
        raise ConfigError(f"the Hugging Face Hub needs the huggingface_hub package: {HUB_EXTRA}") from None
    return huggingface_hub


def split_revision(name: str) -> tuple[str, str | None]:
    """``org/name@rev`` -> (``org/name``, ``rev``); without ``@`` the revision is None."""
    repo, sep, revision = name.partition("@")
    return repo, (revision if sep else None)


def is_repo_id(name: str) -> bool:
    return REPO_ID.fullmatch(split_revision(name)[0]) is not None


def offline() -> bool:
    """``HF_HUB_OFFLINE`` as set now (huggingface_hub reads it once, when first imported)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in TRUE


def _cache_dir(cache_dir: str | os.PathLike | None) -> str | None:
    """The cache the environment names now, for the same reason."""
    if cache_dir is not None:
        return str(cache_dir)
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return str(Path(os.environ["HF_HOME"]) / "hub")
    return None


def resolve_model(
    name_or_path: str | os.PathLike,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool | None = None,
) -> Path:
    """A local model folder for a path or a Hub repo id (``org/name`` or ``org/name@revision``).

    ``local_files_only`` defaults to ``HF_HUB_OFFLINE``; ``revision`` (a branch, tag or commit) to the
    ``@revision`` of the name, else the repo's main branch.
    """
    path = Path(name_or_path)
    recover_dir(path)  # a save killed between its two renames left the folder's previous version aside
    if path.exists() or not is_repo_id(str(name_or_path)):
        return path  # a local folder wins; anything else is reported by the caller as a missing folder
    repo, pinned = split_revision(str(name_or_path))
    if pinned == "":
        raise ConfigError(f"{name_or_path}: an empty revision after '@' (org/name@BRANCH, TAG or COMMIT)")
    if revision is not None and pinned is not None and revision != pinned:
        raise ConfigError(f"{name_or_path}: revision '{pinned}' in the name and revision '{revision}' given")
    revision = revision or pinned
    try:
        import huggingface_hub as hub
    except ImportError:
        raise CheckpointError(
            f"{name_or_path}: no such folder (reading it as a Hugging Face repo id needs huggingface_hub: {HUB_EXTRA})"
        ) from None
    local = offline() if local_files_only is None else local_files_only
    cache = _cache_dir(cache_dir)
    try:
        folder = hub.snapshot_download(
            repo,
            revision=revision,
            cache_dir=cache,
            local_files_only=local,
            allow_patterns=MODEL_PATTERNS,
            library_name="hnet-genomics",
        )
    except Exception as e:
        if not _from_hub(e):
            raise
        raise CheckpointError(_hub_error(e, str(name_or_path), revision, cache, local)) from None
    return Path(folder)


def model_folder(value: str | os.PathLike, option: str = "--model") -> Path:
    """What a command's ``--model`` names, as a local folder: the folder itself, or the Hub snapshot of a repo id
    (``HF_HUB_OFFLINE`` honoured). Errors name the option."""
    try:
        folder = resolve_model(value)
    except (CheckpointError, ConfigError) as e:
        raise CheckpointError(f"{option} {e}") from None
    if not folder.is_dir():
        raise CheckpointError(f"{option} {value}: no such folder (nor a Hugging Face repo id like org/name)")
    return folder


def _from_hub(e: Exception) -> bool:
    """Raised by huggingface_hub or the HTTP stack under it (or a file or value it refused), not a bug of ours."""
    module = type(e).__module__
    from_stack = module.startswith(("huggingface_hub", "httpx", "requests", "urllib3"))
    return from_stack or isinstance(e, (OSError, ValueError))


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__


def _hub_error(e: Exception, name: str, revision: str | None, cache: str | None, local: bool) -> str:
    kind = type(e).__name__
    where = cache or "the Hugging Face cache"
    at = f" at revision '{revision}'" if revision else ""
    if kind == "LocalEntryNotFoundError" and local:
        return (
            f"{name}: no such folder, and not in the Hugging Face cache ({where}){at} while Hub downloads are off "
            "(HF_HUB_OFFLINE=1 or local_files_only); download it once with network access"
        )
    if kind in ("LocalEntryNotFoundError", "OfflineModeIsEnabled"):
        return f"{name}: no such folder, and the Hugging Face Hub cannot be reached to download it (not in {where}{at})"
    if kind == "RevisionNotFoundError":
        return f"{name}: the repository has no revision '{revision}'"
    if kind == "GatedRepoError":
        return f"{name}: a gated repository; accept its terms on the Hub and log in (`hf auth login`)"
    if kind == "RepositoryNotFoundError":
        return (
            f"{name}: no such folder here, nor a model repository on the Hugging Face Hub "
            "(a private one needs `hf auth login`)"
        )
    if kind == "HFValidationError":
        return f"{name}: not a valid Hugging Face repo id ({_first_line(e)})"
    return f"{name}: Hugging Face Hub download failed ({_first_line(e)})"


def upload_folder(
    folder: str | os.PathLike,
    repo_id: str,
    revision: str | None = None,
    private: bool | None = None,
    commit_message: str = "Upload model with hnet-genomics",
    token: str | None = None,
) -> str:
    """Create the model repo if needed (and the branch ``revision``), upload every file of ``folder`` in one
    commit; returns the commit's URL."""
    if not is_repo_id(repo_id) or "@" in repo_id:
        raise ConfigError(f"{repo_id}: not a Hugging Face repo id (org/name; the branch goes in --revision)")
    hub = huggingface_hub()
    api = hub.HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        if revision is not None:
            api.create_branch(repo_id, branch=revision, exist_ok=True, repo_type="model")
        info = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            revision=revision,
            commit_message=commit_message,
            repo_type="model",
        )
    except Exception as e:
        if not _from_hub(e):
            raise
        raise CheckpointError(f"{repo_id}: upload to the Hugging Face Hub failed ({_first_line(e)})") from None
    return str(getattr(info, "commit_url", info))

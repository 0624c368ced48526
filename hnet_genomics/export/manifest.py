"""``PREFIX.tracks.json`` (boundary tracks) and ``PREFIX.bits.json`` (likelihood tracks): what one ``boundaries``,
``likelihood`` or ``merge-tracks`` run wrote at a prefix, and from what.

They let a later run of the same kind at the same prefix remove the files of the earlier run that it does not
rewrite (a re-run with fewer formats must not leave last week's bigWig beside today's BED), and let
``merge-tracks`` check that its shards are all N shards of one export (same model, genome, regions and
windows), each once. A manifest is a record, not an order: a file it names is removed only if it is a track
file of that kind at that prefix and still has the size and time recorded when it was written.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path

from hnet_genomics.atomic import commit, sweep_stale, write_json_atomic
from hnet_genomics.errors import ConfigError, DataError
from hnet_genomics.export.regions import Region
from hnet_genomics.outputs import file_record, still_as_recorded

KIND = "hnet-genomics boundary tracks"  # every manifest's "kind", whichever tracks it lists (older readers check it)
TRACKS = ("boundaries", "likelihood")
# What each kind of export writes after "PREFIX." (chrom.sizes is written by both, with the same content).
TRACK_NAMES = {
    "boundaries": r"stage\d+\.(?:bed|bedGraph|bw|bb|bed\.gz|bed\.gz\.tbi)|chrom\.sizes",
    "likelihood": r"bits\.(?:fwd|rev|mean)\.(?:bedGraph|bw)|chrom\.sizes",
}


def prefix_names(tracks: Iterable[str]) -> str:
    """Every name an export of ``tracks`` may write after "PREFIX." (both manifests included: an older
    version's likelihood manifest may be moved): what ``outputs.check_paths`` keeps inputs away from."""
    return "|".join([*(TRACK_NAMES[t] for t in tracks), r"tracks\.json", r"bits\.json"])


def manifest_path(prefix: str | Path, tracks: str = "boundaries") -> Path:
    """``PREFIX.tracks.json`` lists the boundary tracks, ``PREFIX.bits.json`` the likelihood tracks, so one
    prefix can hold both kinds and a run of one never takes the other's record for its own."""
    return Path(f"{prefix}.tracks.json" if tracks == "boundaries" else f"{prefix}.bits.json")


def export_identity(
    model_dir: str | Path, sizes: dict[str, int], regions: list[Region], window: int, overlap: int
) -> str:
    """A digest of everything that decides the tracks' content (weights included), shared by all shards."""
    h = hashlib.sha256()
    model_dir = Path(model_dir)
    for name in ("config.json", "model.safetensors"):
        with open(model_dir / name, "rb") as f:
            while chunk := f.read(1 << 24):
                h.update(chunk)
    h.update(
        json.dumps(
            [list(sizes.items()), [(r.chrom, r.start, r.end) for r in sorted(regions)], window, overlap]
        ).encode()
    )
    return h.hexdigest()[:32]


def _load(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DataError(f"{path}: not valid JSON; delete it and the tracks beside it, then export again") from None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list) or data.get("kind") != KIND or not all(isinstance(n, str) for n in files):
        raise DataError(f"{path}: not a track manifest written by hnet-genomics")
    data.setdefault("tracks", "boundaries")  # written before likelihood tracks had manifests
    if data["tracks"] not in TRACKS:
        raise DataError(f"{path}: lists unknown tracks '{data['tracks']}'")
    return data


def read_manifest(prefix: str | Path, tracks: str = "boundaries") -> dict | None:
    """The manifest of ``tracks`` at ``prefix``, or None. Version 1 manifests put the likelihood tracks'
    record at ``PREFIX.tracks.json`` too; such a record is read as the likelihood manifest, never as the
    boundaries'."""
    own = _load(manifest_path(prefix, tracks))
    if tracks == "boundaries":
        return own if own is None or own["tracks"] == "boundaries" else None
    if own is not None:
        return own
    legacy = _load(manifest_path(prefix, "boundaries"))
    return legacy if legacy is not None and legacy["tracks"] == "likelihood" else None


def candidate_outputs(prefix: str | Path, tracks: str | None = None) -> list[Path]:
    """Files at ``prefix`` named like our track outputs of ``tracks`` (default: either kind), whoever wrote them."""
    prefix = Path(prefix)
    if not prefix.parent.is_dir():
        return []
    names = TRACK_NAMES[tracks] if tracks else "|".join(TRACK_NAMES.values())
    named = re.compile(re.escape(prefix.name) + rf"\.(?:{names})")
    return sorted(p for p in prefix.parent.iterdir() if named.fullmatch(p.name))


def prefix_files(prefix: str | Path) -> list[Path]:
    """Every track file and manifest at ``prefix``: what a command reads when it is given a track prefix."""
    return candidate_outputs(prefix) + [p for t in TRACKS if (p := manifest_path(prefix, t)).is_file()]


def sweep_prefix(prefix: str | Path, stages: int = 8) -> None:
    """Temporary files a killed run at this prefix left behind (SIGKILL gives no chance to clean up)."""
    from hnet_genomics.export.likelihood import KINDS, bits_paths
    from hnet_genomics.export.tracks import stage_paths

    paths = [p for s in range(1, stages + 1) for p in stage_paths(prefix, s).values()]
    paths += [p for k in KINDS for p in bits_paths(prefix, k).values()]
    manifests = [manifest_path(prefix, t) for t in TRACKS]
    sweep_stale(paths + candidate_outputs(prefix) + manifests + [Path(f"{prefix}.chrom.sizes")])


def _remove_earlier(prefix: Path, earlier: dict, written: set[str], keep: set[str], tracks: str, log) -> None:
    """Remove the files the earlier ``tracks`` run at ``prefix`` recorded and this run did not rewrite, but only
    those that are track files of this prefix (same folder, our names), that the other kind of tracks at
    this prefix does not list, and that are still exactly the files that run wrote (size and time)."""
    own = re.compile(re.escape(prefix.name) + rf"\.(?:{TRACK_NAMES[tracks]})")
    found = earlier.get("records")
    records: dict = found if isinstance(found, dict) else {}
    where = manifest_path(prefix, tracks)
    for name in sorted(n for n in earlier["files"] if n not in written):
        if not own.fullmatch(name):
            log(f"warning: {where} lists {name!r}, which is not a {tracks} track of {prefix}; nothing removed for it")
            continue
        stale = prefix.parent / name
        if name in keep or not (stale.exists() or stale.is_symlink()):
            continue
        if still_as_recorded(stale, records.get(name)):
            stale.unlink()
            log(f"removed {stale} (written by the earlier run at this prefix, not by this one)")
        else:
            why = "changed since" if name in records else "not recorded with its size and time by"
            log(f"warning: {stale} was {why} the earlier run at this prefix (left as it is; remove it if it is stale)")


def finish_outputs(
    prefix: str | Path,
    written: Iterable[Path],
    identity: str,
    stages: int,
    shard: tuple[int, int] | None,
    log,
    tracks: str = "boundaries",
) -> Path:
    """Remove the earlier run's files this run did not rewrite (``_remove_earlier``), warn about same-named
    files no run of ours recorded, and record what this run wrote, with each file's size and time. Returns
    the manifest path."""
    prefix = Path(prefix)
    names = {Path(p).name for p in written}
    earlier = read_manifest(prefix, tracks)
    other = read_manifest(prefix, next(t for t in TRACKS if t != tracks))
    keep = set(other["files"]) if other else set()
    if earlier:
        _remove_earlier(prefix, earlier, names, keep, tracks, log)
    recorded = set(earlier["files"]) if earlier else set()
    for p in candidate_outputs(prefix, tracks):
        if p.name not in names | recorded | keep:
            log(f"warning: {p} was not written by this run (left as it is; remove it if it is stale)")
    legacy = manifest_path(prefix, "boundaries")
    if tracks == "boundaries" and other is not None and not manifest_path(prefix, "likelihood").exists():
        commit(legacy, manifest_path(prefix, "likelihood"))  # an older version's likelihood manifest, moved
    path = manifest_path(prefix, tracks)
    write_json_atomic(
        path,
        {
            "kind": KIND,
            "version": 2,
            "tracks": tracks,
            "files": sorted(names),
            "records": {n: file_record(prefix.parent / n) for n in sorted(names)},
            "stages": stages,
            "export": identity,
            "shard": list(shard) if shard else None,
        },
    )
    if tracks == "likelihood" and earlier is not None and earlier["tracks"] == "likelihood":
        old = _load(legacy)
        if old is not None and old["tracks"] == "likelihood":
            legacy.unlink()  # an older version's likelihood manifest, superseded by PREFIX.bits.json
    return path


def check_manifests(prefix: str | Path) -> None:
    """Both manifests at ``prefix`` are readable (checked before an export runs, not after)."""
    for t in TRACKS:
        read_manifest(prefix, t)


def tracks_to_merge(shards: list[str], wanted: str | None = None) -> list[str]:
    """``wanted``, or every kind of tracks the first shard holds (boundaries if none: the error then names
    ``PREFIX.tracks.json``)."""
    if wanted is not None:
        return [wanted]
    return [t for t in TRACKS if shards and read_manifest(shards[0], t) is not None] or ["boundaries"]


def check_shard_set(shards: list[str], tracks: str = "boundaries") -> None:
    """The shards are shards 1..N of one export of ``tracks``, each exactly once (in any order)."""
    if not shards:
        raise ConfigError("merge-tracks: no shards given")
    seen: dict[int, str] = {}
    first = None
    for shard in shards:
        m = read_manifest(shard, tracks)
        if m is None:
            raise DataError(
                f"{manifest_path(shard, tracks)}: missing; merge-tracks takes the prefixes of "
                f"`boundaries` or `likelihood` --shard K/N runs (export the shards again with this "
                f"version)"
            )
        if not m.get("shard"):
            raise DataError(f"{shard}: an unsharded export (no --shard K/N); merge only the shards of one export")
        k, n = m["shard"]
        if first is None:
            first = (shard, n, m.get("export"), m.get("tracks"))
        elif n != first[1]:
            raise DataError(
                f"{shard}: is shard {k}/{n} but {first[0]} is one of {first[1]}; merge the shards of "
                f"one `--shard K/N` series"
            )
        elif m.get("tracks") != first[3]:
            raise DataError(
                f"{shard}: holds {m['tracks']} tracks but {first[0]} holds {first[3]} tracks; merge "
                f"the shards of one export"
            )
        elif m.get("export") != first[2]:
            raise DataError(
                f"{shard}: exported with another model, genome, region set or window than "
                f"{first[0]}; merge the shards of one export"
            )
        if k in seen:
            raise DataError(f"{shard}: shard {k}/{n} is given twice (also as {seen[k]})")
        seen[k] = shard
    assert first is not None  # shards is not empty
    n = first[1]
    missing = [k for k in range(1, n + 1) if k not in seen]
    if missing:
        raise DataError(
            f"merge-tracks: shard(s) {', '.join(f'{k}/{n}' for k in missing)} missing; a merge "
            f"needs all {n} shards of the export, or chromosomes would be missing from the tracks"
        )

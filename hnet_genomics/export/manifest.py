"""``PREFIX.tracks.json``: what one ``boundaries``, ``likelihood`` or ``merge-tracks`` run wrote at a prefix, and
from what.

It lets a later run at the same prefix remove exactly the files of the earlier run that it does not rewrite
(a re-run with fewer formats must not leave last week's bigWig beside today's BED), and lets ``merge-tracks``
check that its shards are all N shards of one export (same model, genome, regions and windows), each once.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path

from hnet_genomics.atomic import sweep_stale, write_json_atomic
from hnet_genomics.errors import ConfigError, DataError
from hnet_genomics.export.regions import Region

KIND = "hnet-genomics boundary tracks"
_OUTPUT = re.compile(
    r"\.(stage\d+\.(bed|bedGraph|bw|bb|bed\.gz|bed\.gz\.tbi)|bits\.(fwd|rev|mean)\.(bedGraph|bw)"
    r"|chrom\.sizes)"
)


def manifest_path(prefix: str | Path) -> Path:
    return Path(f"{prefix}.tracks.json")


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


def read_manifest(prefix: str | Path) -> dict | None:
    path = manifest_path(prefix)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DataError(f"{path}: not valid JSON; delete it and the tracks beside it, then export again") from None
    if not isinstance(data, dict) or data.get("kind") != KIND or not isinstance(data.get("files"), list):
        raise DataError(f"{path}: not a track manifest written by hnet-genomics")
    data.setdefault("tracks", "boundaries")  # written before likelihood tracks had manifests
    return data


def candidate_outputs(prefix: str | Path) -> list[Path]:
    """Files at ``prefix`` named like our track outputs (whoever wrote them)."""
    prefix = Path(prefix)
    if not prefix.parent.is_dir():
        return []
    return sorted(
        p
        for p in prefix.parent.iterdir()
        if p.name.startswith(f"{prefix.name}.") and _OUTPUT.fullmatch(p.name[len(prefix.name) :])
    )


def sweep_prefix(prefix: str | Path, stages: int = 8) -> None:
    """Temporary files a killed run at this prefix left behind (SIGKILL gives no chance to clean up)."""
    from hnet_genomics.export.likelihood import KINDS, bits_paths
    from hnet_genomics.export.tracks import stage_paths

    paths = [p for s in range(1, stages + 1) for p in stage_paths(prefix, s).values()]
    paths += [p for k in KINDS for p in bits_paths(prefix, k).values()]
    sweep_stale(paths + candidate_outputs(prefix) + [manifest_path(prefix), Path(f"{prefix}.chrom.sizes")])


def finish_outputs(
    prefix: str | Path,
    written: Iterable[Path],
    identity: str,
    stages: int,
    shard: tuple[int, int] | None,
    log,
    tracks: str = "boundaries",
) -> Path:
    """Remove the earlier run's files this run did not rewrite, warn about same-named files no run of ours
    recorded, and record what this run wrote. Returns the manifest path."""
    prefix = Path(prefix)
    names = {Path(p).name for p in written}
    earlier = read_manifest(prefix)
    ours_before = set(earlier["files"]) if earlier else set()
    for name in sorted(ours_before - names):
        stale = prefix.parent / name
        if stale.is_file():
            stale.unlink()
            log(f"removed {stale} (written by the earlier run at this prefix, not by this one)")
    for p in candidate_outputs(prefix):
        if p.name not in names and p.name not in ours_before:
            log(f"warning: {p} was not written by this run (left as it is; remove it if it is stale)")
    path = manifest_path(prefix)
    write_json_atomic(
        path,
        {
            "kind": KIND,
            "version": 1,
            "tracks": tracks,
            "files": sorted(names),
            "stages": stages,
            "export": identity,
            "shard": list(shard) if shard else None,
        },
    )
    return path


def check_shard_set(shards: list[str]) -> None:
    """The shards are shards 1..N of one export, each exactly once (in any order)."""
    if not shards:
        raise ConfigError("merge-tracks: no shards given")
    seen: dict[int, str] = {}
    first = None
    for shard in shards:
        m = read_manifest(shard)
        if m is None:
            raise DataError(
                f"{manifest_path(shard)}: missing; merge-tracks takes the prefixes of "
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

"""Do learned chunk boundaries line up with annotated feature edges (exon starts/ends, gene starts)?

A boundary is the first base of a chunk; its coordinate ``b`` is the cut between bases ``b-1`` and ``b``.
A feature ``[s, e)`` has edges at the cuts ``s`` and ``e``; on the minus strand ``e`` is its 5' edge.
The first chunk of each tiled region starts there by construction, so it is not counted as a boundary.

Null model: the same number of boundaries per region placed uniformly at random (without replacement) on
the region's other bases. The number of those falling within +-k bp of an edge is then hypergeometric
(draws = boundaries, successes = near-edge bases), so each permutation is sampled exactly and cheaply as
one hypergeometric draw per region instead of shuffling millions of positions.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from hnet_genomics.atomic import atomic_path, output_dir, write_json_atomic
from hnet_genomics.data.bed import read_bed as bed_records
from hnet_genomics.errors import DataError

EdgeKind = Literal["both", "5prime", "3prime"]


@dataclass
class Intervals:
    """BED intervals of one chromosome, sorted by start; ``sign`` is -1 for minus-strand features."""

    starts: np.ndarray
    ends: np.ndarray
    sign: np.ndarray


@dataclass
class EdgeEnrichment:
    flank: int
    edges: str
    n_boundaries: int
    n_edges: int
    observed: int  # boundaries within +-flank of an edge
    expected: float  # mean under the shuffle null (exact)
    ratio: float  # observed / expected
    p_enrichment: float  # P(null >= observed), permutation estimate with +1 correction
    p_depletion: float  # P(null <= observed)
    n_permutations: int


def read_bed(path: str | Path) -> dict[str, Intervals]:
    """BED3+ (plain, gzip or bgzip; strand from column 6 when present), grouped by chromosome in file order of
    first appearance."""
    rows: dict[str, list[tuple[int, int, int]]] = {}
    for rec in bed_records(path):
        strand = rec.fields[5] if len(rec.fields) > 5 else "."
        if strand not in ("+", "-", "."):
            raise DataError(f"{rec.where(path)}: strand must be +, - or ., got '{strand}'")
        rows.setdefault(rec.chrom, []).append((rec.start, rec.end, -1 if strand == "-" else 1))
    out = {}
    for chrom, r in rows.items():
        a = np.array(sorted(r), dtype=np.int64)
        out[chrom] = Intervals(a[:, 0], a[:, 1], a[:, 2])
    return out


def tiled_regions(chunks: Intervals, source: str | Path = "boundary BED") -> tuple[np.ndarray, np.ndarray]:
    """Maximal runs of abutting chunks: the regions the boundaries were called on (and are shuffled in)."""
    if np.any(chunks.starts[1:] < chunks.ends[:-1]):
        raise DataError(f"{source}: chunks overlap; expected the chunk tiling written by `boundaries`")
    breaks = np.flatnonzero(chunks.starts[1:] != chunks.ends[:-1]) + 1
    first = np.concatenate(([0], breaks))
    last = np.concatenate((breaks - 1, [len(chunks.starts) - 1]))
    return chunks.starts[first], chunks.ends[last]


def chunk_boundaries(chunks: Intervals, region_starts: np.ndarray) -> np.ndarray:
    """Chunk starts that are model decisions (not the forced first base of a region)."""
    return np.setdiff1d(chunks.starts, region_starts, assume_unique=True)


def feature_edges(features: Intervals, which: EdgeKind) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique edges as (cut position, strand sign, is_5prime)."""
    five = np.where(features.sign < 0, features.ends, features.starts)
    three = np.where(features.sign < 0, features.starts, features.ends)
    parts = []
    if which in ("both", "5prime"):
        parts.append(np.stack([five, features.sign, np.ones_like(five)], 1))
    if which in ("both", "3prime"):
        parts.append(np.stack([three, features.sign, np.zeros_like(three)], 1))
    e = np.unique(np.concatenate(parts), axis=0)
    return e[:, 0], e[:, 1], e[:, 2].astype(bool)


def _merge(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    reach = np.maximum.accumulate(e)
    new = np.concatenate(([True], s[1:] > reach[:-1]))
    idx = np.flatnonzero(new)
    return s[idx], np.maximum.reduceat(e, idx) if len(idx) else e[:0]


def _coverage(ms: np.ndarray, me: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Bases of disjoint sorted intervals (ms, me) inside each [lo, hi)."""
    cum = np.concatenate(([0], np.cumsum(me - ms)))

    def below(x: np.ndarray) -> np.ndarray:  # covered bases < x
        j = np.searchsorted(ms, x, side="left")
        over = np.where(j > 0, np.clip(me[np.maximum(j - 1, 0)] - x, 0, None), 0)
        return cum[j] - over

    return below(hi) - below(lo)


def _near(positions: np.ndarray, edges: np.ndarray, flank: int) -> np.ndarray:
    sorted_edges = np.unique(edges)
    i = np.searchsorted(sorted_edges, positions - flank, side="left")
    ok = i < len(sorted_edges)
    return ok & (sorted_edges[np.minimum(i, len(sorted_edges) - 1)] <= positions + flank)


def edge_enrichment(
    boundaries: dict[str, np.ndarray],
    regions: dict[str, tuple[np.ndarray, np.ndarray]],
    edges: dict[str, np.ndarray],
    flank: int,
    which: str = "both",
    n_permutations: int = 1000,
    seed: int = 0,
) -> EdgeEnrichment:
    """Boundaries within +-flank of an edge, against boundaries shuffled within their own regions."""
    rng = np.random.default_rng(seed)
    observed, expected, n_bound, n_edges = 0, 0.0, 0, 0
    null = np.zeros(n_permutations, dtype=np.int64)
    for chrom, (rs, re) in regions.items():
        b = boundaries.get(chrom, np.zeros(0, np.int64))
        n_bound += len(b)
        e = edges.get(chrom)
        if e is None or len(e) == 0:
            continue
        interior_lo = rs + 1  # the region's first base is never a candidate
        k = np.maximum(np.searchsorted(rs, e, side="right") - 1, 0)
        n_edges += int(((e > rs[k]) & (e < re[k])).sum())  # cuts where a boundary could fall
        ms, me = _merge(e - flank, e + flank + 1)
        near_bases = _coverage(ms, me, interior_lo, re)
        n_cand = re - interior_lo
        per_region = np.diff(np.searchsorted(b, np.concatenate((rs, re[-1:]))))
        observed += int(_near(b, e, flank).sum())
        for n_r, m_r, c_r in zip(per_region.tolist(), near_bases.tolist(), n_cand.tolist()):
            if n_r and m_r:
                expected += n_r * m_r / c_r
                null += rng.hypergeometric(m_r, c_r - m_r, n_r, size=n_permutations)
    if n_edges == 0:
        raise DataError(
            "annotation: no feature edges fall inside the boundary regions (do the chromosome names match the FASTA?)"
        )
    return EdgeEnrichment(
        flank=flank,
        edges=which,
        n_boundaries=n_bound,
        n_edges=n_edges,
        observed=observed,
        expected=expected,
        ratio=observed / expected if expected else float("nan"),
        p_enrichment=(1 + int((null >= observed).sum())) / (1 + n_permutations),
        p_depletion=(1 + int((null <= observed).sum())) / (1 + n_permutations),
        n_permutations=n_permutations,
    )


def edge_profile(
    boundaries: dict[str, np.ndarray],
    regions: dict[str, tuple[np.ndarray, np.ndarray]],
    edges: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    half_width: int,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Fraction of edges with a boundary at each offset (transcript orientation), for 5' and 3' edges."""
    offsets = np.arange(-half_width, half_width + 1)
    hits = {"5prime": np.zeros(len(offsets)), "3prime": np.zeros(len(offsets))}
    valid = {"5prime": np.zeros(len(offsets)), "3prime": np.zeros(len(offsets))}
    for chrom, (rs, re) in regions.items():
        if chrom not in edges:
            continue
        pos, sign, five = edges[chrom]
        b = boundaries.get(chrom, np.zeros(0, np.int64))
        x = pos[:, None] + sign[:, None] * offsets[None, :]
        k = np.maximum(np.searchsorted(rs, x, side="right") - 1, 0)
        inside = (x > rs[k]) & (x < re[k])
        is_b = np.zeros_like(inside)
        if len(b):
            is_b = b[np.minimum(np.searchsorted(b, x), len(b) - 1)] == x
        for name, sel in (("5prime", five), ("3prime", ~five)):
            hits[name] += (is_b & inside)[sel].sum(0)
            valid[name] += inside[sel].sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return offsets, {k: hits[k] / valid[k] for k in hits if valid[k].any()}


def chunk_lengths_by_feature(
    chunks: dict[str, Intervals], features: dict[str, Intervals]
) -> tuple[np.ndarray, np.ndarray]:
    """Chunk lengths split by whether the chunk's middle base lies inside any feature."""
    inside, outside = [], []
    for chrom, c in chunks.items():
        length = c.ends - c.starts
        mid = (c.starts + c.ends - 1) // 2
        if chrom in features:
            ms, me = _merge(features[chrom].starts, features[chrom].ends)
            j = np.searchsorted(ms, mid, side="right") - 1
            hit = (j >= 0) & (mid < me[np.maximum(j, 0)])
        else:
            hit = np.zeros(len(mid), bool)
        inside.append(length[hit])
        outside.append(length[~hit])
    return np.concatenate(inside), np.concatenate(outside)


def _length_summary(x: np.ndarray) -> dict[str, float]:
    if len(x) == 0:
        return {"n_chunks": 0}
    q25, q50, q75 = np.percentile(x, [25, 50, 75])
    return {
        "n_chunks": int(len(x)),
        "mean_bp": float(x.mean()),
        "median_bp": float(q50),
        "q25_bp": float(q25),
        "q75_bp": float(q75),
    }


def run_enrichment(
    boundaries_bed: str | Path,
    annotation_bed: str | Path,
    out_dir: str | Path,
    flanks: list[int],
    which: EdgeKind = "both",
    n_permutations: int = 1000,
    half_width: int = 100,
    seed: int = 0,
) -> dict:
    """Write enrichment.tsv, chunk_lengths.tsv, edge_profile.tsv, edge_density.png and summary.json.

    The inputs are read and tested before ``out_dir`` is created, so a bad input leaves no empty folder.
    """
    chunks = read_bed(boundaries_bed)
    features = read_bed(annotation_bed)
    regions = {c: tiled_regions(iv, boundaries_bed) for c, iv in chunks.items()}
    bounds = {c: chunk_boundaries(iv, regions[c][0]) for c, iv in chunks.items()}
    if not any(len(b) for b in bounds.values()):  # a model that does not chunk yet (a few steps), or a plain BED
        print(
            f"hnet-genomics: warning: {boundaries_bed}: no chunk boundary inside its regions (each region is one "
            f"chunk), so every enrichment ratio is undefined (written as null)",
            file=sys.stderr,
        )
    edge_sets = {c: feature_edges(iv, which) for c, iv in features.items() if c in chunks}
    if not edge_sets:
        from hnet_genomics.data.bed import chrom_hint

        first = next(iter(features))
        raise DataError(
            f"{annotation_bed}: no feature lies on a chromosome of {boundaries_bed} (annotation has "
            f"'{first}', boundaries have '{next(iter(chunks))}'){chrom_hint(first, chunks)}"
        )
    edge_pos = {c: e[0] for c, e in edge_sets.items()}
    rows = [edge_enrichment(bounds, regions, edge_pos, k, which, n_permutations, seed) for k in flanks]
    inside, outside = chunk_lengths_by_feature(chunks, features)
    lengths: dict[str, dict[str, float] | float] = {
        "inside": _length_summary(inside),
        "outside": _length_summary(outside),
    }
    if len(inside) and len(outside):
        from scipy.stats import mannwhitneyu

        lengths["mann_whitney_p"] = float(mannwhitneyu(inside, outside).pvalue)
    offsets, profile = edge_profile(bounds, regions, edge_sets, half_width)
    n_b = sum(len(b) for b in bounds.values())
    n_cand = sum(int((re - rs - 1).sum()) for rs, re in regions.values())
    baseline = n_b / n_cand if n_cand else float("nan")
    summary = {
        "boundaries": str(boundaries_bed),
        "annotation": str(annotation_bed),
        "edges": which,
        "boundary_rate": baseline,
        "enrichment": [asdict(r) for r in rows],
        "chunk_lengths": lengths,
    }

    with output_dir(out_dir) as out_dir:
        _write_tsv(out_dir / "enrichment.tsv", [asdict(r) for r in rows])
        _write_tsv(
            out_dir / "chunk_lengths.tsv", [{"where": k, **v} for k, v in lengths.items() if isinstance(v, dict)]
        )
        _write_tsv(
            out_dir / "edge_profile.tsv",
            [
                {"offset": int(o), **{f"rate_{k}": float(v[i]) for k, v in profile.items()}}
                for i, o in enumerate(offsets)
            ],
        )
        _plot(out_dir / "edge_density.png", offsets, profile, baseline, inside, outside, rows, annotation_bed)
        write_json_atomic(out_dir / "summary.json", summary)
    return summary


def _write_tsv(path: Path, rows: list[dict]) -> None:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    body = "".join("\t".join(_fmt(r.get(c, "")) for c in cols) + "\n" for r in rows)
    with atomic_path(path) as tmp:
        tmp.write_text("\t".join(cols) + "\n" + body)


def _fmt(v: object) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _plot(
    path: Path,
    offsets: np.ndarray,
    profile: dict[str, np.ndarray],
    baseline: float,
    inside: np.ndarray,
    outside: np.ndarray,
    rows: list[EdgeEnrichment],
    annotation: str | Path,
) -> None:
    import matplotlib.pyplot as plt

    fig = edge_figure(offsets, profile, baseline, inside, outside, rows, annotation)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png", bbox_inches="tight")
    plt.close(fig)


def edge_figure(
    offsets: np.ndarray,
    profile: dict[str, np.ndarray],
    baseline: float,
    inside: np.ndarray,
    outside: np.ndarray,
    rows: list[EdgeEnrichment],
    annotation: str | Path,
):
    """Boundary rate around feature edges (left) and chunk lengths inside vs outside features (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4))
    labels = {"5prime": "5' edges (feature starts)", "3prime": "3' edges (feature ends)"}
    for name, rate in profile.items():
        ax.plot(offsets, rate, lw=1, label=labels[name])
    ax.axhline(baseline, color="grey", ls="--", lw=1, label=f"all bases ({baseline:.3f})")
    ax.axvline(0, color="black", lw=0.5)
    ax.set_xlabel("offset from feature edge (bp, feature orientation)")
    ax.set_ylabel("fraction of edges with a chunk boundary")
    ax.set_title(edge_plot_title(Path(annotation).name, rows), fontsize=8)
    ax.legend(fontsize=8)
    hi = max(int(np.percentile(np.concatenate([inside, outside]), 99)), 2)
    bins = np.arange(1, hi + 2)
    for x, name in ((inside, "inside features"), (outside, "outside")):
        if len(x):
            bx.hist(x, bins=bins, density=True, histtype="step", label=f"{name} (median {np.median(x):g} bp)")
    bx.set_xlabel("chunk length (bp)")
    bx.set_ylabel("density")
    bx.legend(fontsize=8)
    fig.tight_layout()
    return fig


def edge_plot_title(annotation: str, rows: list[EdgeEnrichment], width: int = 62) -> str:
    """The density panel's title, wrapped so that every flank's ratio stays inside the figure."""
    import textwrap

    stats = "; ".join(f"±{r.flank} bp ratio {r.ratio:.2f} (p {r.p_enrichment:.2g})" for r in rows)
    return "\n".join([f"{annotation}, {rows[0].edges} edges:", *textwrap.wrap(stats, width)])

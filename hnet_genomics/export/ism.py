"""``ism`` files: the 4 x L matrix (.npy and a TSV), bigWig tracks of the mean and most negative LLR per position,
and for short regions a sequence-logo style picture.

``PREFIX.ism.npy``: float32 (4, L), rows A, C, G, T, columns the region's bases; NaN on the reference base and
where nothing was scored. ``PREFIX.ism.tsv``: one line per base (1-based position, reference base, the four
LLRs, their mean and minimum over the three changes, the strands that scored it). ``PREFIX.ism.mean.bw`` and
``PREFIX.ism.min.bw``: the mean and most negative LLR per base (a browser track). ``PREFIX.ism.png``: the
reference sequence as letters scaled by minus the mean LLR (a tall letter: changing it makes the sequence
much less likely to the model), above the matrix as a heat map. Every file appears under its final name only
once complete.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hnet_genomics.atomic import atomic_path
from hnet_genomics.inference.ism import BASES, IsmResult

COLOURS = {"A": "#109648", "C": "#255C99", "G": "#F7B32B", "T": "#D62839"}


def ism_paths(prefix: str | Path) -> dict[str, Path]:
    return {k: Path(f"{prefix}.ism.{k}") for k in ("npy", "tsv", "mean.bw", "min.bw", "png")}


def write_ism(
    result: IsmResult, prefix: str | Path, sizes: dict[str, int], logo_max: int, title: str = ""
) -> list[Path]:
    """Every file of the module docstring (the picture only when the region has at most ``logo_max`` bases)."""
    paths = ism_paths(prefix)
    with atomic_path(paths["npy"]) as tmp, open(tmp, "wb") as f:
        np.save(f, result.llr)
    with atomic_path(paths["tsv"]) as tmp:
        tmp.write_text(_table(result))
    written = [paths["npy"], paths["tsv"]]
    for kind, values in (("mean", result.mean()), ("min", result.most_negative())):
        _bigwig(result, values, paths[f"{kind}.bw"], sizes)
        written.append(paths[f"{kind}.bw"])
    if result.region.length <= logo_max:
        _logo(result, paths["png"], title)
        written.append(paths["png"])
    return written


def _table(r: IsmResult) -> str:
    mean, low = r.mean(), r.most_negative()
    lines = ["chrom\tpos\tref\tA\tC\tG\tT\tmean\tmin\tstrands\n"]
    for i in range(r.region.length):
        values = [_num(v) for v in (*r.llr[:, i], mean[i], low[i])]
        strands = {"+-": "both", "+": "fwd", "-": "rev"}.get(r.strands[i], "")
        lines.append(
            f"{r.region.chrom}\t{r.region.start + i + 1}\t{chr(r.ref[i])}\t" + "\t".join(values) + f"\t{strands}\n"
        )
    return "".join(lines)


def _num(x: float) -> str:
    return "" if np.isnan(x) else f"{x:.6f}"


def _bigwig(r: IsmResult, values: np.ndarray, final: Path, sizes: dict[str, int]) -> None:
    import pybigtools

    chrom, start = r.region.chrom, r.region.start
    records = ((chrom, start + i, start + i + 1, float(v)) for i, v in enumerate(values) if not np.isnan(v))
    with atomic_path(final, keep_suffix=True) as tmp:
        pybigtools.open(str(tmp), "w").write({chrom: sizes[chrom]}, records)


def _logo(r: IsmResult, final: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = r.region.length
    fig, (top, heat) = plt.subplots(
        2, 1, figsize=(max(6.0, 0.16 * n + 1.5), 4.2), sharex=True, gridspec_kw={"height_ratios": [1.3, 1]}
    )
    height = -r.mean()
    for i, h in enumerate(height):
        if not np.isnan(h) and h != 0:
            _letter(top, chr(r.ref[i]), i, float(h))
    top.axhline(0, color="black", lw=0.6)
    finite = height[~np.isnan(height)]
    span = float(np.abs(finite).max()) if finite.size and np.abs(finite).max() > 0 else 1.0
    top.set_ylim(
        min(float(finite.min()) if finite.size else 0.0, 0.0) - 0.05 * span,
        max(float(finite.max()) if finite.size else 0.0, 0.0) + 0.05 * span,
    )
    top.set_ylabel("- mean LLR\n(nats)")
    top.set_title(title or f"{r.region.chrom}:{r.region.start + 1:,}-{r.region.end:,}", fontsize=9)
    limit = float(np.nanmax(np.abs(r.llr))) if not np.isnan(r.llr).all() else 1.0
    image = heat.imshow(
        r.llr,
        aspect="auto",
        cmap="RdBu",
        vmin=-limit,
        vmax=limit,
        interpolation="nearest",
        extent=(-0.5, n - 0.5, 3.5, -0.5),
    )
    for i, b in enumerate(r.ref):
        if b in BASES:
            heat.plot(i, BASES.index(b), marker="o", ms=2, color="black")
    heat.set_yticks(range(4), [chr(b) for b in BASES])
    heat.set_xlabel(f"position on {r.region.chrom} (1-based)")
    ticks = np.linspace(0, n - 1, min(n, 8)).round().astype(int)
    heat.set_xticks(ticks, [f"{r.region.start + t + 1:,}" for t in ticks], fontsize=7)
    fig.colorbar(image, ax=[top, heat], shrink=0.6, label="LLR ALT vs REF (nats)")
    with atomic_path(final, keep_suffix=True) as tmp:
        fig.savefig(tmp, dpi=150)
    plt.close(fig)


def _letter(ax, base: str, x: int, height: float) -> None:
    """``base`` as a filled glyph one position wide, from 0 up to ``height`` (down for a negative one)."""
    from matplotlib import transforms
    from matplotlib.font_manager import FontProperties
    from matplotlib.patches import PathPatch
    from matplotlib.textpath import TextPath

    glyph = TextPath((0, 0), base, size=1, prop=FontProperties(family="DejaVu Sans", weight="bold"))
    box = glyph.get_extents()
    place = (
        transforms.Affine2D()
        .translate(-box.x0, -box.y0)
        .scale(0.9 / box.width, abs(height) / box.height)
        .translate(x - 0.45, min(height, 0.0))
    )
    ax.add_patch(PathPatch(place.transform_path(glyph), color=COLOURS.get(base, "grey"), lw=0))

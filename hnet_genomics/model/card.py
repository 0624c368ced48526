"""The model card (the Hub repo's README.md) of a saved model, written from the files its run left.

Every figure is read from a file that travels with the model: ``config.json`` and ``training.json`` of the model
folder, the pretraining run's ``metrics.json`` (steps, bases or bytes seen, validation bits, compression, data,
the command that trained it) and the JSON files of ``hnet-genomics eval --out`` (held-out bits). A figure no
file holds is left out, never filled in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from hnet_genomics.errors import DataError

PAPER = "Hwang, Wang & Gu, *Dynamic Chunking for End-to-End Hierarchical Sequence Modeling*, arXiv:2507.07955"


@dataclass
class RunFiles:
    """What a model's card is written from: its folder, and what its pretraining run and evaluations wrote."""

    model_dir: Path
    config: dict  # config.json
    training: dict = field(default_factory=dict)  # training.json
    encoding: dict = field(default_factory=dict)  # encoding.json: how the model reads its input (kind: dna | text)
    metrics: dict | None = None  # the run's metrics.json
    evals: list[tuple[str, dict]] = field(default_factory=list)  # (file name, eval --out JSON)


def read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text file") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object ({what})")
    return data


def read_eval(path: Path) -> dict:
    """An ``eval --out`` result: at least its split and bits."""
    data = read_json(path, "an `hnet-genomics eval --out` result")
    if not isinstance(data.get("bpb"), (int, float)) or not isinstance(data.get("split"), str):
        raise DataError(f"{path}: not an `hnet-genomics eval --out` result (needs 'split' and 'bpb')")
    return data


def _unit(files: RunFiles) -> str:
    """'base' or 'byte': what the model was trained on."""
    if files.metrics and files.metrics.get("unit") in ("base", "byte"):
        return str(files.metrics["unit"])
    data = (files.metrics or {}).get("data")
    kind = data.get("kind") if isinstance(data, dict) else files.encoding.get("kind")  # no run: the model's own
    return "byte" if kind == "text" else "base"


def _count(n) -> str:
    return f"{n:,}" if isinstance(n, int) else str(n)


def _params(files: RunFiles) -> int | None:
    """The run's own count, else the tensors stored in the weights file (a tied LM head is stored once)."""
    if files.metrics and isinstance(files.metrics.get("params"), int):
        return int(files.metrics["params"])
    weights = files.model_dir / "model.safetensors"
    if not weights.is_file():
        return None
    from safetensors import safe_open

    total = 0
    with safe_open(str(weights), "pt") as f:
        for key in f.keys():
            size = 1
            for d in f.get_slice(key).get_shape():
                size *= d
            total += size
    return total


def _table(rows: list[tuple[str, str]]) -> list[str]:
    return ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]


def _architecture(files: RunFiles, unit: str) -> list[str]:
    cfg = files.config
    stages = len(cfg.get("d_model", [])) - 1
    kind = f"{stages}-stage H-Net" if stages > 0 else "isotropic baseline (no chunking)"
    rows = [
        ("model", kind),
        ("arch_layout", f"`{json.dumps(cfg.get('arch_layout'))}`"),
        ("d_model", ", ".join(str(d) for d in cfg.get("d_model", []))),
    ]
    if any(cfg.get("d_intermediate", [])):
        rows.append(("d_intermediate (MLP)", ", ".join(str(d) for d in cfg["d_intermediate"])))
    if stages > 0:
        rows.append(("target compression per level", ", ".join(f"{c:g}" for c in cfg.get("target_compression", []))))
    params = _params(files)
    if params is not None:
        rows.append(("parameters", _count(params)))
    rows.append(("vocabulary", f"{cfg.get('vocab_size', 256)} byte values (no tokenizer)"))
    if cfg.get("tie_embeddings"):
        rows.append(("LM head", "tied to the byte embeddings"))
    if isinstance(files.training.get("seq_len"), int):
        rows.append(("trained window", f"{files.training['seq_len']:,} {unit}s"))
    return ["## Architecture", "", *_table(rows), ""]


def _training(files: RunFiles, unit: str) -> list[str]:
    m = files.metrics
    if not m:
        return []
    rows = []
    data = m.get("data")
    if isinstance(data, dict):
        source = f"`{data.get('name', data.get('path', '?'))}`"
        size = data.get("size")
        if isinstance(size, int):
            source += f", {size:,} {unit}s in {data.get('records', '?')} record(s)"
        rows.append(("training data", source))
        splits = [f"{s} {data[s]:,}" for s in ("train", "valid", "test") if isinstance(data.get(s), int)]
        if splits:
            rows.append((f"split ({unit}s)", ", ".join(splits)))
    if isinstance(m.get("config"), str):
        rows.append(("config", f"`{m['config']}`"))
    if isinstance(m.get("steps"), int):
        selected = m.get("selected_step")
        chosen = f" (weights of step {selected:,}, best on validation)" if isinstance(selected, int) else ""
        rows.append(("optimizer steps", f"{m['steps']:,}{chosen}"))
    seen = m.get(f"{unit}s_seen")
    if isinstance(seen, int):
        rows.append((f"{unit}s seen", f"{seen:,}"))
    for key, label in (("device", "device"), ("precision", "precision")):
        if isinstance(m.get(key), str):
            rows.append((label, m[key]))
    lines = ["## Training", "", *_table(rows), ""] if rows else []
    if isinstance(m.get("command"), str):
        lines += ["Trained with:", "", "```bash", m["command"], "```", ""]
    return lines


def _results(files: RunFiles, unit: str) -> list[str]:
    m = files.metrics or {}
    header = f"| split | bits per {unit} | {unit}s scored | compression (per level) | source |"
    rows = []
    if isinstance(m.get("val_bpb"), (int, float)):
        ratios = ", ".join(f"{r:.2f}" for r in m.get("compression_ratios", []) or []) or "-"
        scored = m.get(f"val_{unit}s_scored")
        rows.append(
            f"| valid (end of training) | {m['val_bpb']:.4f} | {_count(scored or '-')} | {ratios} | metrics.json |"
        )
    for name, ev in files.evals:
        ratios = ", ".join(f"{r:.2f}" for r in ev.get("compression_ratios", []) or []) or "-"
        scored = ev.get(f"{unit}s", ev.get("bases", ev.get("bytes", "-")))
        who = "" if not str(ev.get("model", "")).startswith("markov") else f" ({ev['model']} reference)"
        rows.append(f"| {ev['split']}{who} | {ev['bpb']:.4f} | {_count(scored)} | {ratios} | eval/{name} |")
    if not rows:
        return []
    return ["## Results", "", header, "|---|---|---|---|---|", *rows, ""]


def model_card(files: RunFiles, repo_id: str | None = None) -> str:
    """README.md for the model's Hub repository."""
    unit = _unit(files)
    name = repo_id or files.model_dir.name
    stages = len(files.config.get("d_model", [])) - 1
    levels = "one level" if stages == 1 else f"{stages} levels"
    what = "DNA" if unit == "base" else "byte-level text"
    tags = ["hnet", "dynamic-chunking", "byte-level", "genomics" if unit == "base" else "text"]
    load = repo_id or "PATH/TO/MODEL"
    lines = [
        "---",
        "library_name: hnet-genomics",
        "tags:",
        *(f"- {t}" for t in tags),
        "---",
        "",
        f"# {name}",
        "",
        f"A tokenizer-free {what} language model"
        + (f" with {levels} of H-Net dynamic chunking ({PAPER})" if stages > 0 else "")
        + ", made with hnet-genomics. It reads raw bytes"
        + (" and learns where its own chunks begin." if stages > 0 else "."),
        "",
        "```python",
        "from hnet_genomics import from_pretrained",
        "",
        f'model = from_pretrained("{load}")  # add revision="..." to pin a version',
        "```",
        "",
    ]
    if unit == "base":
        lines += [
            "```bash",
            f"hnet-genomics boundaries --model {load} --fasta genome.fa --out tracks/genome",
            "```",
            "",
        ]
    lines += _architecture(files, unit) + _training(files, unit) + _results(files, unit)
    lines += [
        "The figures above are read from this repository's files (`config.json`, `training.json`, "
        "`metrics.json`, `eval/*.json`) by `hnet-genomics push`.",
        "",
    ]
    return "\n".join(lines)

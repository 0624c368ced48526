"""Fine-tuning protocol that yields comparable numbers (as Caduceus reports them, unlike HyenaDNA).

Per seed: a stratified 90/10 validation split is carved from the training set with that seed, the model is
trained for a fixed number of epochs, the epoch with the best validation score is kept, and only that
checkpoint ever sees the test set, once. Seeds change the split, the head initialisation, the batch order
and (from scratch) the backbone initialisation; results are reported per seed and as mean ± std. The k-mer
baseline runs through the same splits so the two are comparable seed by seed.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from hnet_genomics.atomic import atomic_dir, write_json_atomic
from hnet_genomics.data.encoding import reverse_complement
from hnet_genomics.data.labelled import LabelledSequences
from hnet_genomics.devices import inference_precision
from hnet_genomics.errors import CheckpointError, ConfigError, DataError
from hnet_genomics.tasks.batching import LongPolicy, fit_to_context, pad_batch
from hnet_genomics.tasks.heads import Pooling, SequenceClassifier
from hnet_genomics.tasks.kmer import KmerLogisticRegression
from hnet_genomics.tasks.labels import LabelSpace, TaskKind, label_space
from hnet_genomics.tasks.metrics import (
    CLASSIFICATION_METRICS,
    classification_metrics,
    regression_metrics,
    summarize_seeds,
)

if TYPE_CHECKING:
    from hnet_genomics.model.lm import HNetLM

BackboneFactory = Callable[[], "HNetLM"]


@dataclass
class FinetuneSettings:
    epochs: int = 3
    seeds: int = 3
    batch_size: int = 32
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    pooling: Pooling = "mean"
    freeze_backbone: bool = False
    layer_decay: float = 1.0  # layer-wise LR decay: the block k blocks below the top trains at lr * layer_decay**k
    ratio_loss_weight: float = 0.03  # keeps a fine-tuned H-Net's chunking at its pretraining target
    rc_tta: bool = False
    rc_aug: bool = False
    val_fraction: float = 0.1
    kind: TaskKind = "classification"
    max_len: int | None = None  # None: no limit (isotropic SSMs have none)
    on_long: LongPolicy = "error"
    train_limit: int | None = None  # use a seeded subset of the training split (quick runs)
    select_metric: str = "accuracy"  # classification: the validation score that picks the epoch, the seed and k-mer C
    device: str = "cpu"  # where the network trains; metrics and the saved classifier come back to the CPU
    precision: str = "fp32"  # devices.inference_precision: bf16 autocast on GPUs, as in pretraining


@dataclass(frozen=True)
class TaskData:
    """The task as the protocol sees it: both splits, encoded labels, and the label space."""

    train: LabelledSequences
    test: LabelledSequences
    y_train: np.ndarray
    y_test: np.ndarray
    labels: LabelSpace


def prepare_task(train: LabelledSequences, test: LabelledSequences, settings: FinetuneSettings) -> TaskData:
    """Fix classes from training, check test labels against them, and apply the context-length policy."""
    space = label_space(train, settings.kind)
    check_select_metric(settings, space)
    y_train, y_test = space.encode(train), space.encode(test)
    check_split_sizes(y_train, space, settings.val_fraction, train.source)
    need = len(space.classes) if settings.kind == "classification" else 2
    if settings.train_limit is not None and settings.train_limit < need:
        what = f"the {need} classes of {train.source}" if settings.kind == "classification" else "2"
        raise ConfigError(
            f"--train-limit {settings.train_limit}: fewer training sequences than {what}; a seed must train on "
            f"{'every class' if settings.kind == 'classification' else 'at least 2 sequences'}"
        )
    if settings.max_len is not None:
        train = fit_to_context(train, settings.max_len, settings.on_long)
        test = fit_to_context(test, settings.max_len, settings.on_long)
    return TaskData(train, test, y_train, y_test, space)


def check_select_metric(settings: FinetuneSettings, space: LabelSpace) -> None:
    """The validation score that picks epochs must exist for this task (AUROC only for two classes)."""
    if settings.kind != "classification":
        return
    if settings.select_metric not in CLASSIFICATION_METRICS:
        raise ConfigError(
            f"unknown selection metric '{settings.select_metric}' (choose from {', '.join(CLASSIFICATION_METRICS)})"
        )
    if settings.select_metric == "auroc" and len(space.classes) != 2:
        raise ConfigError(f"AUROC needs a binary task; this one has {len(space.classes)} classes")


def check_split_sizes(y: np.ndarray, space: LabelSpace, fraction: float, source: str) -> None:
    """Enough training records to carve a validation split in which (for a classifier) every class occurs,
    leaving every class in training too; otherwise the 'best epoch' would be chosen on nothing."""
    n = len(y)
    n_val = math.ceil(fraction * n)  # as scikit-learn rounds test_size
    if space.kind == "regression":
        if n_val < 2 or n - n_val < 2:
            raise DataError(
                f"{source}: {n} sequence(s) leave {n_val} for validation and {n - n_val} for training "
                f"at --val-fraction {fraction:g}; each needs at least 2 (add sequences or change "
                f"--val-fraction)"
            )
        return
    counts = np.bincount(y, minlength=len(space.classes))
    rare = int(counts.argmin())
    if counts[rare] < 2:
        raise DataError(
            f"{source}: class '{space.classes[rare]}' has {counts[rare]} training sequence(s); each "
            f"class needs at least 2, one to train on and one to validate with"
        )
    classes = len(space.classes)
    if n_val < classes or n - n_val < classes:
        raise DataError(
            f"{source}: {n} sequences at --val-fraction {fraction:g} leave {n_val} for validation and "
            f"{n - n_val} for training, fewer than the {classes} classes; add sequences or change "
            f"--val-fraction"
        )


def limit_training(
    tr_idx: np.ndarray, y: np.ndarray, limit: int | None, rng: np.random.Generator, every_class: bool
) -> np.ndarray:
    """A seeded subset of ``limit`` training records (``--train-limit``); for a classifier every class of the
    training split keeps at least one record (a drawn record of the largest class makes room), so a small
    limit never trains on one class only."""
    if limit is None or limit >= len(tr_idx):
        return tr_idx
    kept = rng.choice(tr_idx, limit, replace=False)
    if every_class:
        for c in sorted(set(y[tr_idx].tolist()) - set(y[kept].tolist())):
            labels, counts = np.unique(y[kept], return_counts=True)
            largest = np.flatnonzero(y[kept] == labels[counts.argmax()])
            kept[largest[-1]] = rng.choice(tr_idx[y[tr_idx] == c])
    return np.sort(kept)


def split_train_val(y: np.ndarray, fraction: float, seed: int, stratify: bool) -> tuple[np.ndarray, np.ndarray]:
    """Seeded, disjoint (train, val) index arrays covering every training record once."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(y))
    strat = y if stratify and np.bincount(y).min() >= 2 else None
    tr, va = train_test_split(index, test_size=fraction, random_state=seed, stratify=strat)
    return np.sort(tr), np.sort(va)


class _Inputs:
    """Logits for a subset of one split; a frozen backbone's features are computed once per strand."""

    def __init__(self, model: SequenceClassifier, seqs: list[bytes], batch_size: int):
        self.model, self.seqs, self.batch_size = model, seqs, batch_size
        self.device = next(model.parameters()).device
        self.cache: dict[bool, torch.Tensor] = {}

    def logits(self, idx: np.ndarray, rc: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits of records ``idx`` (reverse-complemented where ``rc``) and the backbone's auxiliary loss."""
        if self.model.freeze_backbone:
            fwd = self._features(False)[idx]
            if rc.any():
                fwd = torch.where(torch.from_numpy(rc)[:, None].to(self.device), self._features(True)[idx], fwd)
            return self.model.head(fwd), torch.zeros((), device=self.device)
        seqs = [reverse_complement(self.seqs[i]) if r else self.seqs[i] for i, r in zip(idx, rc)]
        ids, mask = pad_batch(seqs)
        features, aux = self.model.features_and_aux_loss(ids.to(self.device), mask.to(self.device))
        return self.model.head(features), aux

    def _features(self, rc: bool) -> torch.Tensor:
        if rc not in self.cache:
            self.cache[rc] = _batched(
                self.seqs,
                self.batch_size,
                rc,
                lambda ids, mask: self.model.features(ids.to(self.device), mask.to(self.device)),
            )
        return self.cache[rc]


def _batched(seqs: list[bytes], batch_size: int, rc: bool, fn) -> torch.Tensor:
    """Apply ``fn(ids, mask)`` over length-sorted batches (less padding) and restore the input order."""
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    parts = []
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            chunk = [seqs[i] for i in order[start : start + batch_size]]
            ids, mask = pad_batch([reverse_complement(s) for s in chunk] if rc else chunk)
            parts.append(fn(ids, mask).float())
    out = torch.cat(parts)
    return out[torch.from_numpy(np.argsort(order)).to(out.device)]


def predict(
    model: SequenceClassifier,
    seqs: list[bytes],
    kind: TaskKind,
    rc_tta: bool = False,
    batch_size: int = 64,
    inputs: _Inputs | None = None,
) -> np.ndarray:
    """Class probabilities (N, C) or regression outputs (N, 1); ``rc_tta`` averages both strands."""
    model.eval()
    inputs = inputs or _Inputs(model, seqs, batch_size)
    strands = (False, True) if rc_tta else (False,)
    total: np.ndarray | None = None
    with torch.no_grad():
        for rc in strands:
            outs = []
            for start in range(0, len(seqs), batch_size):
                idx = np.arange(start, min(start + batch_size, len(seqs)))
                logits = inputs.logits(idx, np.full(len(idx), rc))[0]
                outs.append(logits.softmax(-1) if kind == "classification" else logits)
            strand = torch.cat(outs).double().cpu().numpy()
            total = strand if total is None else total + strand
    assert total is not None  # at least the forward strand ran
    return total / len(strands)


def _score(kind: TaskKind, y: np.ndarray, out: np.ndarray) -> dict[str, float]:
    return classification_metrics(y, out) if kind == "classification" else regression_metrics(y, out)


def _better(kind: TaskKind, new: dict[str, float], best: dict[str, float] | None, metric: str = "accuracy") -> bool:
    """A classifier's validation ``metric`` (higher is better) or a regression's MSE (lower is better)."""
    if best is None:
        return True
    return new[metric] > best[metric] if kind == "classification" else new["mse"] < best["mse"]


def block_depths(backbone: nn.Module) -> tuple[dict[str, int], int]:
    """Name -> index of the residual block a backbone parameter belongs to, counting blocks in the order they
    run (encoder, inner network, decoder; 0 = embeddings). A chunking level's router, skip and width pad sit
    between its encoder and inner network and count with the encoder's last block; final norms with the block
    before them. Also returns the number of blocks."""
    from hnet_genomics.model.blocks import ResidualBlock
    from hnet_genomics.model.hnet import HNet

    depths: dict[str, int] = {}

    def assign(module: nn.Module, prefix: str, depth: int) -> None:
        for name, _ in module.named_parameters(prefix=prefix.rstrip("."), recurse=True):
            depths[name] = depth

    def walk(module: nn.Module, prefix: str, depth: int) -> int:
        if isinstance(module, ResidualBlock):
            assign(module, prefix, depth + 1)
            return depth + 1
        if isinstance(module, HNet):
            depth = walk(module.encoder, f"{prefix}encoder.", depth)
            for name, child in module.named_children():
                if name not in ("encoder", "main", "decoder"):
                    assign(child, f"{prefix}{name}.", depth)
            for name, _ in module.named_parameters(prefix=prefix.rstrip("."), recurse=False):
                depths[name] = depth
            depth = walk(module.main, f"{prefix}main.", depth)
            return walk(module.decoder, f"{prefix}decoder.", depth)
        for name, _ in module.named_parameters(prefix=prefix.rstrip("."), recurse=False):
            depths[name] = depth
        for name, child in module.named_children():
            depth = walk(child, f"{prefix}{name}.", depth)
        return depth

    n = walk(backbone, "", 0)
    return depths, n


def layerwise_lr_groups(model: SequenceClassifier, lr: float, decay: float) -> list[dict]:
    """One AdamW group per depth: the head at ``lr``, block k of n at ``lr * decay**(n + 1 - k)``, embeddings at
    ``lr * decay**(n + 1)`` (layer-wise LR decay, as BERT / ELECTRA fine-tuning: lower layers hold the most
    general features and move least). ``decay = 1`` is one learning rate for everything."""
    depths, n = block_depths(model.backbone)
    groups: dict[int, list] = {}
    for name, p in model.backbone.named_parameters():
        if p.requires_grad:
            groups.setdefault(depths[name], []).append(p)
    out = [{"params": ps, "lr": lr * decay ** (n + 1 - d)} for d, ps in sorted(groups.items())]
    return out + [{"params": [p for p in model.head.parameters() if p.requires_grad], "lr": lr}]


def finetune_seed(
    task: TaskData, make_backbone: BackboneFactory, settings: FinetuneSettings, seed: int, progress: bool = False
) -> tuple[dict[str, float], SequenceClassifier]:
    """Train one seed, keep the best validation epoch, evaluate it on test once."""
    from tqdm import tqdm

    t0 = time.perf_counter()
    kind = settings.kind
    tr_idx, va_idx = split_train_val(task.y_train, settings.val_fraction, seed, kind == "classification")
    rng = np.random.default_rng(seed)
    tr_idx = limit_training(tr_idx, task.y_train, settings.train_limit, rng, kind == "classification")
    torch.manual_seed(seed)
    model = SequenceClassifier(
        make_backbone(), task.labels.num_outputs, settings.pooling, settings.freeze_backbone, settings.ratio_loss_weight
    ).to(settings.device)
    train_in = _Inputs(model, [task.train.sequences[i] for i in tr_idx], settings.batch_size)
    val_seqs = [task.train.sequences[i] for i in va_idx]
    val_in = _Inputs(model, val_seqs, settings.batch_size)
    y_tr = torch.from_numpy(task.y_train[tr_idx]).to(settings.device)
    y_va = task.y_train[va_idx]

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        layerwise_lr_groups(model, settings.lr, settings.layer_decay),
        lr=settings.lr,
        weight_decay=settings.weight_decay,
    )
    steps_per_epoch = math.ceil(len(tr_idx) / settings.batch_size)
    total = max(1, settings.epochs * steps_per_epoch)
    warmup = max(1, int(settings.warmup_fraction * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup)))
    )
    loss_fn = nn.functional.cross_entropy if kind == "classification" else _mse

    best_val, best_state, best_epoch = None, None, 0
    bar = tqdm(
        total=settings.epochs * steps_per_epoch,
        desc=f"seed {seed}",
        unit="batch",
        disable=not progress,
        dynamic_ncols=True,
        leave=False,
    )
    with inference_precision(settings.device, settings.precision):
        for epoch in range(1, settings.epochs + 1):
            model.train()
            perm = rng.permutation(len(tr_idx))
            for start in range(0, len(perm), settings.batch_size):
                bar.update()
                b = perm[start : start + settings.batch_size]
                rc = rng.random(len(b)) < 0.5 if settings.rc_aug else np.zeros(len(b), dtype=bool)
                logits, aux = train_in.logits(b, rc)
                loss = loss_fn(logits, y_tr[b]) + aux
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                sched.step()
            val = _score(kind, y_va, predict(model, val_seqs, kind, settings.rc_tta, settings.batch_size, val_in))
            if _better(kind, val, best_val, settings.select_metric):
                best_val, best_epoch = val, epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        bar.close()
        if best_state is None or best_val is None:  # no epoch ran
            raise ConfigError(f"fine-tuning needs at least 1 epoch, got {settings.epochs}")
        model.load_state_dict(best_state)
        test = _score(
            kind, task.y_test, predict(model, task.test.sequences, kind, settings.rc_tta, settings.batch_size)
        )
    result = {
        "seed": seed,
        "best_epoch": best_epoch,
        "n_train": len(tr_idx),
        "n_val": len(va_idx),
        **{f"val_{k}": v for k, v in best_val.items()},
        **{f"test_{k}": v for k, v in test.items()},
        "seconds": round(time.perf_counter() - t0, 2),
    }
    return result, model.cpu()


def _mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return nn.functional.mse_loss(pred.squeeze(-1), target)


def kmer_seed(task: TaskData, settings: FinetuneSettings, seed: int, k: int = 6) -> dict[str, float]:
    """The k-mer logistic regression on exactly the split the neural model of the same seed gets."""
    t0 = time.perf_counter()
    tr_idx, va_idx = split_train_val(task.y_train, settings.val_fraction, seed, True)
    rng = np.random.default_rng(seed)
    tr_idx = limit_training(tr_idx, task.y_train, settings.train_limit, rng, True)
    model = KmerLogisticRegression(k=k, seed=seed, select_metric=settings.select_metric)
    model.fit(
        [task.train.sequences[i] for i in tr_idx],
        task.y_train[tr_idx],
        [task.train.sequences[i] for i in va_idx],
        task.y_train[va_idx],
    )
    val = classification_metrics(
        task.y_train[va_idx], model.predict_proba([task.train.sequences[i] for i in va_idx], settings.rc_tta)
    )
    test = classification_metrics(task.y_test, model.predict_proba(task.test.sequences, settings.rc_tta))
    assert model.c is not None  # fit keeps one C of its (non-empty) default grid
    return {
        "seed": seed,
        "C": model.c,
        "n_train": len(tr_idx),
        "n_val": len(va_idx),
        **{f"val_{k_}": v for k_, v in val.items()},
        **{f"test_{k_}": v for k_, v in test.items()},
        "seconds": round(time.perf_counter() - t0, 2),
    }


def run_finetune(
    task: TaskData,
    settings: FinetuneSettings,
    out_dir: str | Path,
    make_backbone: BackboneFactory | None,
    run_kmer: bool,
    description: dict | None = None,
    log: Callable[[str], None] = print,
    progress: bool = False,
    report_extra: dict | None = None,
) -> dict:
    """All seeds of the neural model and/or the k-mer baseline; writes ``metrics.json`` and ``best/``.

    ``report_extra`` adds top-level keys to ``metrics.json`` (a benchmark records its task and settings there).
    The output folder is created when the first of them is written, so a run that fails leaves none.
    """
    out = Path(out_dir)
    report = {
        **(report_extra or {}),
        "task": {
            "train": task.train.source,
            "test": task.test.source,
            "kind": settings.kind,
            "classes": task.labels.classes,
            "n_train_total": len(task.train),
            "n_test": len(task.test),
        },
        "settings": asdict(settings) | (description or {}),
        "results": {},
    }
    if run_kmer and settings.kind != "classification":
        raise ConfigError("--baseline kmer is a classifier; it cannot run on a regression task")
    seeds = list(range(settings.seeds))
    if make_backbone is not None:
        runs, best = [], None
        for seed in seeds:
            result, model = finetune_seed(task, make_backbone, settings, seed, progress)
            runs.append(result)
            log(_line("model", result))
            if best is None or _better(settings.kind, _val(result), _val(best[0]), settings.select_metric):
                best = (result, model)
        if best is None:
            raise ConfigError(f"fine-tuning needs at least 1 seed, got {settings.seeds}")
        save_classifier(
            best[1],
            out / "best",
            {
                "seed": best[0]["seed"],
                "pooling": settings.pooling,
                "kind": settings.kind,
                "classes": task.labels.classes,
                "max_len": settings.max_len,
            },
        )
        report["results"]["model"] = {"seeds": runs, **summarize_seeds(runs), "saved_seed": best[0]["seed"]}
    if run_kmer:
        runs = []
        for seed in seeds:
            runs.append(kmer_seed(task, settings, seed))
            log(_line("kmer", runs[-1]))
        report["results"]["kmer"] = {"seeds": runs, **summarize_seeds(runs)}
    write_json_atomic(out / "metrics.json", report)
    return report


def _val(result: dict) -> dict[str, float]:
    return {k[len("val_") :]: v for k, v in result.items() if k.startswith("val_")}


def _line(name: str, r: dict) -> str:
    shown = [
        k
        for k in ("val_accuracy", "test_accuracy", "test_mcc", "test_auroc", "val_mse", "test_mse", "test_pearson")
        if k in r
    ]
    return f"{name} seed {r['seed']}: " + " ".join(f"{k}={r[k]:.4f}" for k in shown) + f" ({r['seconds']}s)"


CLASSIFIER_FILES = ("backbone", "head.safetensors", "classifier.json")


def check_classifier_folder(path: Path) -> None:
    """Before hours of fine-tuning: ``best/`` will be replaced whole, so it may hold only a saved classifier."""
    from hnet_genomics.atomic import foreign_entries
    from hnet_genomics.errors import OutputError

    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: exists and is not a folder; move it away or choose another --out")
    if path.is_dir():
        foreign = foreign_entries(path, CLASSIFIER_FILES)
        if foreign:
            raise OutputError(
                f"{path}: holds files fine-tuning did not write ({', '.join(foreign[:3])}); it is "
                f"replaced whole, so move them away or choose another --out"
            )


def save_classifier(model: SequenceClassifier, path: Path, meta: dict) -> None:
    """``backbone/`` (``save_pretrained`` format), ``head.safetensors`` and ``classifier.json``, swapped in whole."""
    from safetensors.torch import save_file

    with atomic_dir(path, owned=CLASSIFIER_FILES) as tmp:
        model.backbone.save_pretrained(tmp / "backbone")
        save_file({k: v.contiguous() for k, v in model.head.state_dict().items()}, str(tmp / "head.safetensors"))
        (tmp / "classifier.json").write_text(json.dumps(meta | {"num_outputs": model.head.out_features}, indent=2))


def load_classifier(path: str | Path) -> tuple[SequenceClassifier, dict]:
    """Inverse of ``save_classifier``: the model in eval mode and its metadata (classes, pooling...)."""
    from safetensors.torch import load_file

    from hnet_genomics.model.lm import HNetLM

    p = Path(path)
    if not (p / "classifier.json").is_file() or not (p / "head.safetensors").is_file():
        raise CheckpointError(
            f"{p}: not a fine-tuned classifier (expected classifier.json, head.safetensors and backbone/)"
        )
    meta = json.loads((p / "classifier.json").read_text())
    model = SequenceClassifier(HNetLM.from_pretrained(p / "backbone"), meta["num_outputs"], meta["pooling"])
    model.head.load_state_dict(load_file(str(p / "head.safetensors")))
    return model.eval(), meta

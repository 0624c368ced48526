"""Memory a training step of each shipped DNA config keeps, measured on this machine's kernel path.

For every config: parameters, the saved-activation bytes one training window adds (measured by
``training.resources.measure_training_memory`` on the device and precision given, H-Net boundaries drawn at
0.8 x the target compression), the step's total at the config's shipped per-device batch, how many windows fit
in a 80 GB GPU (at the 80 % the pretraining check allows), and the micro-batch and accumulation ``pretrain``
would train with there (``resources.plan_micro_batch``). On a CPU this measures the pure-torch path (an upper
bound of the GPU kernels, which recompute or never materialise what the torch path keeps); on a GPU it measures
the kernels that will run.

    python benchmarks/memory_model.py --precision bf16 --out benchmarks/results/memory-cpu.md
    python benchmarks/memory_model.py --device cuda --out benchmarks/results/memory-gpu.md   # on a GPU machine
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from hardware import cpu_name

from hnet_genomics import build_model, load_config
from hnet_genomics.atomic import write_text_atomic
from hnet_genomics.errors import ConfigError
from hnet_genomics.kernels import dispatch
from hnet_genomics.training.datamodule import batch_size_for
from hnet_genomics.training.resources import MEMORY_MARGIN, measure_training_memory, plan_micro_batch

CONFIGS = [
    "dna/hnet_1stage",
    "dna/hnet_2stage",
    "dna/mamba2",
    "dna/transformer",
    "dna/mamba2_flops",
    "dna/transformer_flops",
]
GPU_BYTES = 80 * 10**9
HEADER = [
    "| config | parameters | saved MiB per window | per-device batch (accumulation) | step GiB "
    "| windows that fit 80 GB | pretrain's micro-batch on 80 GB (accumulation) |",
    "|---|---|---|---|---|---|---|",
]


def row(name: str, device: str, precision: str) -> str:
    config = load_config(name)
    torch.manual_seed(0)
    model = build_model(config).to(device)
    estimate = measure_training_memory(model, config.train.seq_len, precision)
    batch = batch_size_for(config)
    step = estimate.step_bytes(batch)
    budget = int(MEMORY_MARGIN * GPU_BYTES)
    fits = estimate.windows_that_fit(budget)
    accumulate = config.train.accumulate_grad_batches
    try:
        micro, acc = plan_micro_batch(estimate, budget, batch, accumulate)
        plan = f"{micro} (x{acc})"
    except ConfigError:
        plan = "does not fit"
    return (
        f"| {name} | {estimate.params / 1e6:.1f} M | {estimate.per_window / 2**20:,.0f} | "
        f"{batch} x {config.train.seq_len:,} (x{accumulate}) | {step / 2**30:,.1f} | {fits:,} | {plan} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    parser.add_argument("--configs", nargs="+", default=CONFIGS)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    hardware = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else cpu_name()
    kernels = ", ".join(f"{op}: {impl}" for op, impl in dispatch.describe(args.device).items())
    rows = []
    for name in args.configs:
        rows.append(row(name, args.device, args.precision))
        print(rows[-1], flush=True)
    report = "\n".join(
        [
            "# Memory of a training step, per shipped DNA config",
            "",
            f"Measured on {hardware} ({args.device}, {args.precision}; kernels: {kernels}); torch {torch.__version__}.",
            "Saved activations per window: bytes autograd keeps for one training window, from two short forwards "
            "extrapolated to the window (`training/resources.py`), H-Net boundaries drawn at 0.8 x the target "
            "compression. Step: parameters, gradients and AdamW state (16 bytes per parameter) plus the saved "
            "activations of the shipped per-device batch. Fits: windows of one step that stay under 80 % of a 80 GB "
            "GPU; pretrain's micro-batch: the largest that fits there and divides the windows of an optimizer step.",
            "",
            (
                "All ops ran their pure-torch path: an upper bound for a GPU with mamba-ssm, whose chunk scan never "
                "keeps the torch SSD's (chunk x chunk) decay matrices."
                if set(dispatch.describe(args.device).values()) == {"torch"}
                else "GPU kernels as listed above."
            ),
            "",
            *HEADER,
            *rows,
            "",
            f"Command: `python benchmarks/memory_model.py --device {args.device} --precision {args.precision}"
            + (f" --configs {' '.join(args.configs)}" if args.configs != CONFIGS else "")
            + (f" --out {args.out}`" if args.out else "`"),
            "",
        ]
    )
    if args.out:
        write_text_atomic(args.out, report)
    print(report)


if __name__ == "__main__":
    main()

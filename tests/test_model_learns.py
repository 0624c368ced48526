"""A tiny H-Net learns real human DNA: held-out loss falls and the ratio loss holds compression near its target N."""

import torch

from hnet_genomics import build_model, load_config
from hnet_genomics.data import demo
from hnet_genomics.data.genome import Genome
from hnet_genomics.training.optim import make_optimizer, make_scheduler


def test_tiny_hnet_learns_human_dna_and_compression_settles_near_target():
    steps, length, batch = 200, 128, 2
    cfg = load_config("dna/hnet_1stage_tiny", [f"train.max_steps={steps}", "train.warmup_steps=20"])
    torch.manual_seed(0)
    model = build_model(cfg)
    genome = Genome(demo.HUMAN_FASTA)
    chrom = next(iter(genome.sizes))
    train_end = int(genome.sizes[chrom] * 0.85)
    held_out = torch.tensor(list(genome.fetch(chrom, train_end, train_end + 8 * length).upper())).view(8, length)

    def evaluate():
        with torch.no_grad():
            out = model(held_out)
        ce = torch.nn.functional.cross_entropy(out.logits[:, :-1].reshape(-1, 256), held_out[:, 1:].reshape(-1))
        return ce.item() / torch.log(torch.tensor(2.0)).item()

    bpb0 = evaluate()
    opt = make_optimizer(model, cfg.model, cfg.train)
    sched = make_scheduler(opt, cfg.train)
    g = torch.Generator().manual_seed(1)
    train = torch.tensor(list(genome.fetch(chrom, 0, train_end).upper()))
    ratios = []
    for _ in range(steps):
        starts = torch.randint(0, train_end - length, (batch,), generator=g).tolist()
        x = torch.stack([train[s : s + length] for s in starts])
        out = model(x)
        ratios.append(out.compression_ratios()[0])
        ce = torch.nn.functional.cross_entropy(out.logits[:, :-1].reshape(-1, 256), x[:, 1:].reshape(-1))
        opt.zero_grad()
        (ce + cfg.train.ratio_loss_weight * out.ratio_loss).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        opt.step()
        sched.step()
    bpb = evaluate()
    target = cfg.model.target_compression[0]
    assert bpb < 2.0 < bpb0  # better than uniform over ACGT; random init is far worse (256-way)
    # The first updates drive boundaries away (compression far above N); the ratio loss brings them back.
    # One 256-base batch is noisy (+-1), the mean of the last 50 is not.
    early, late = sum(ratios[:10]) / 10, sum(ratios[-50:]) / 50
    assert abs(late - target) < 0.35 and abs(late - target) < abs(early - target), (early, late)

"""``HNetLM.forward_from``: a prefix run once, then many suffixes continuing its state in one padded batch, equal
to one full forward over each whole sequence (logits and chunk boundaries of every stage)."""

from __future__ import annotations

import pytest
import torch
from conftest import small_model_config

from hnet_genomics.model.cache import take_rows
from hnet_genomics.model.lm import HNetLM

MODELS = ["dna/hnet_1stage_tiny", "dna/hnet_2stage_tiny", "dna/mamba2_tiny", "dna/transformer_tiny"]
TOL = dict(rtol=0, atol=2e-5)  # fp32 logits; the chunked scans split the sequence at other places


def _model(name: str) -> HNetLM:
    torch.manual_seed(0)
    return HNetLM(small_model_config(name)).eval()


def _padded(seqs: list[bytes]) -> tuple[torch.Tensor, torch.Tensor]:
    length = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), length, dtype=torch.long)
    mask = torch.zeros(len(seqs), length, dtype=torch.bool)
    for i, s in enumerate(seqs):
        ids[i, : len(s)], mask[i, : len(s)] = torch.tensor(list(s)), True
    return ids, mask


def _alleles(bases: bytes, cut: int) -> list[bytes]:
    """Suffixes after ``bases[:cut]``: the reference, an SNV, an insertion, a deletion, one base, a long one."""
    ref = bases[cut : cut + 120]
    snv = bytes([b"ACGT"[(b"ACGT".index(ref[5]) + 1) % 4]])
    return [ref, ref[:5] + snv + ref[6:], ref[:7] + b"GATTACA" + ref[7:], ref[:3] + ref[9:], ref[:1], bases[cut:]]


@pytest.mark.parametrize("name", MODELS)
def test_prefix_then_batched_suffixes_equal_full_forwards(name, human_bases):
    model = _model(name)
    bases, cut = human_bases[20_000:20_260], 97
    suffixes = _alleles(bases, cut)
    with torch.no_grad():
        prefix_logits, state, _ = model.forward_from(torch.tensor(list(bases[:cut]))[None], model.init_state(1))
        torch.testing.assert_close(prefix_logits, model(torch.tensor(list(bases[:cut]))[None]).logits, **TOL)
        ids, mask = _padded(suffixes)
        rows = take_rows(state, torch.zeros(len(suffixes), dtype=torch.long))
        logits, _, levels = model.forward_from(ids, rows, mask)
        for i, s in enumerate(suffixes):
            full = model(torch.tensor(list(bases[:cut] + s))[None])
            torch.testing.assert_close(logits[i, : len(s)], full.logits[0, cut:], **TOL)
            assert len(levels) == model.config.num_stages
            if levels:  # stage-1 decisions at base resolution are those of the full forward
                assert torch.equal(levels[0][0][i, : len(s)], full.boundary_masks[0][0, cut:])
                torch.testing.assert_close(levels[0][1][i, : len(s)], full.boundary_probs[0][0, cut:], **TOL)


@pytest.mark.parametrize("name", MODELS[:2])
def test_continuations_chain_and_prefixes_of_different_lengths_batch_together(name, human_bases):
    """Padded prefixes keep each row's state at its own end; a state continued twice is still exact; a
    2-stage model's inner stage sees chunk counts that differ between rows."""
    model = _model(name)
    seqs = [human_bases[s : s + 300] for s in (1_000, 9_000, 33_000)]
    cuts = [40, 133, 201]
    with torch.no_grad():
        ids, mask = _padded([s[:c] for s, c in zip(seqs, cuts)])
        _, state, _ = model.forward_from(ids, model.init_state(3), mask)
        ids, mask = _padded([s[c:250] for s, c in zip(seqs, cuts)])
        _, state, _ = model.forward_from(ids, state, mask)
        ids, mask = _padded([s[250:] for s in seqs])
        logits, _, levels = model.forward_from(ids, state, mask)
        for i, s in enumerate(seqs):
            full = model(torch.tensor(list(s))[None])
            torch.testing.assert_close(logits[i], full.logits[0, 250:], **TOL)
            for (b, _), fb in zip(levels[:1], full.boundary_masks[:1]):
                assert torch.equal(b[i], fb[0, 250:])


def test_the_first_continuation_from_the_initial_state_needs_a_token_in_every_row():
    model = _model("dna/hnet_1stage_tiny")
    ids, mask = _padded([b"ACGT", b"A"])
    mask[1] = False
    with pytest.raises(ValueError, match="at least one token in every row"):
        model.forward_from(ids, model.init_state(2), mask)

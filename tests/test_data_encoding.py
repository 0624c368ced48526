"""Byte policies on real DNA: reverse complement, soft-masking, N / IUPAC handling."""

import numpy as np
import pandas as pd
import pytest

from hnet_genomics.config import DataConfig
from hnet_genomics.data import demo
from hnet_genomics.data.encoding import encode_window, reverse_complement
from hnet_genomics.data.genome import Genome


@pytest.fixture(scope="module")
def hla() -> bytes:
    return Genome(demo.HUMAN_FASTA).fetch("BA000025.2", 500_000, 502_000)


@pytest.fixture(scope="module")
def soft_masked() -> bytes:
    """A real soft-masked 200 bp binding site (lower case = repeat) from the TFBS set."""
    seqs = pd.read_csv(demo.TFBS_TRAIN)["sequence"]
    return next(s for s in seqs if any(c.islower() for c in s) and any(c.isupper() for c in s)).encode()


def test_reverse_complement_of_real_dna_pairs_each_base_and_reverses(hla):
    rc = reverse_complement(hla)
    pairs = {ord("A"): ord("T"), ord("C"): ord("G"), ord("G"): ord("C"), ord("T"): ord("A")}
    assert all(pairs[a] == b for a, b in zip(hla, rc[::-1]))
    assert reverse_complement(rc) == hla


def test_reverse_complement_handles_every_iupac_code_and_case():
    assert reverse_complement(b"ACGTURYSWKMBDHVN") == b"NBDHVKMWSRYAACGT"
    assert reverse_complement(b"acgtnRy") == b"rYnacgt"
    assert reverse_complement(b"aCgRy") == b"rYcGt"


def test_reverse_complement_is_an_involution_on_arrays(soft_masked):
    arr = np.frombuffer(soft_masked + b"RYSWKMBDHVNryswkmbdhvn", dtype=np.uint8)
    assert np.array_equal(reverse_complement(reverse_complement(arr)), arr)
    assert reverse_complement(arr).tobytes() == reverse_complement(arr.tobytes())


def test_soft_mask_is_upper_cased_by_default_and_exposed_as_a_side_channel(soft_masked):
    w = encode_window(soft_masked, DataConfig(emit_soft_mask=True))
    assert w.ids == soft_masked.upper()
    assert np.array_equal(w.soft_mask, np.array([c.islower() for c in soft_masked.decode()]))
    kept = encode_window(soft_masked, DataConfig(soft_mask="keep"))
    assert kept.ids == soft_masked and kept.soft_mask is None


def test_n_policies(hla):
    raw = hla[:50] + b"NNNNN" + hla[55:60] + b"R" + hla[61:100]  # 6 ambiguous bases in 100
    ambiguous = np.array([c not in b"ACGT" for c in raw])
    keep = encode_window(raw, DataConfig(n_policy="keep"))
    assert keep.ids == raw and keep.loss_mask.all()
    replace = encode_window(raw, DataConfig(n_policy="replace"))
    assert replace.ids == raw.replace(b"R", b"N") and replace.loss_mask.all()
    mask = encode_window(raw, DataConfig(n_policy="mask"))
    assert mask.ids == raw and np.array_equal(mask.loss_mask, ~ambiguous)
    drop = encode_window(raw, DataConfig(n_policy="drop"))
    assert drop.ambiguous_fraction == pytest.approx(0.06)
    assert np.array_equal(drop.loss_mask, ~ambiguous)


def test_replace_preserves_soft_mask_case(hla):
    raw = hla[:10].lower() + b"r" + hla[10:20]
    w = encode_window(raw, DataConfig(n_policy="replace", soft_mask="keep"))
    assert w.ids == hla[:10].lower() + b"n" + hla[10:20]


def test_reverse_complemented_window_flips_masks_with_the_bases(soft_masked):
    w = encode_window(soft_masked[:50] + b"N" + soft_masked[51:], DataConfig(emit_soft_mask=True))
    rc = w.reverse_complemented()
    assert rc.ids == reverse_complement(w.ids)
    assert np.array_equal(rc.loss_mask, w.loss_mask[::-1])
    assert np.array_equal(rc.soft_mask, w.soft_mask[::-1])


def test_text_bytes_pass_through_unchanged():
    raw = "Größe — naïve façade\n".encode()
    w = encode_window(raw, DataConfig(kind="text"))
    assert w.ids == raw and w.loss_mask.all()

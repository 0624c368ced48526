"""The order-K Markov reference on the embedded human HLA region (real DNA)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from hnet_genomics.config import DataConfig
from hnet_genomics.data.demo import HUMAN_FASTA
from hnet_genomics.data.genome import Genome
from hnet_genomics.data.intervals import Interval, make_splits
from hnet_genomics.errors import ConfigError, DataError
from hnet_genomics.training import markov
from hnet_genomics.training.markov import MarkovModel, encode_bases, markov_eval


@pytest.fixture(scope="module")
def genome() -> Genome:
    return Genome(HUMAN_FASTA)


@pytest.fixture(scope="module")
def splits(genome: Genome) -> dict[str, list[Interval]]:
    return make_splits(genome, DataConfig())


class SequenceSource:
    """In-memory stand-in for Genome, to score edited copies of real sequence."""

    def __init__(self, seqs: dict[str, bytes]) -> None:
        self.seqs = seqs

    def fetch(self, chrom: str, start: int, end: int) -> bytes:
        return self.seqs[chrom][start:end]


def test_heldout_bpb_is_below_uniform_and_improves_with_order(genome, splits):
    scores = {k: MarkovModel(k).fit(genome, splits["train"]).bpb(genome, splits["test"])["bpb"] for k in (0, 4, 10)}
    assert scores[10] < scores[4] < scores[0] < 2.0
    assert scores[10] < 1.91  # ~1.89 on this region: repeats give long contexts real counts


def test_order0_bpb_is_the_cross_entropy_of_test_bases_under_train_composition(genome, splits):
    def composition(intervals):
        counts = Counter()
        for iv in intervals:
            counts.update(genome.fetch(iv.chrom, iv.start, iv.end).upper().decode())
        return counts

    train, test = composition(splits["train"]), composition(splits["test"])
    n_train = sum(train[b] for b in "ACGT")
    expected = -sum(test[b] * math.log2((train[b] + 0.5) / (n_train + 2)) for b in "ACGT") / sum(
        test[b] for b in "ACGT"
    )
    result = MarkovModel(0).fit(genome, splits["train"]).bpb(genome, splits["test"])
    assert result["bases"] == sum(test[b] for b in "ACGT")
    assert result["bpb"] == pytest.approx(expected, rel=1e-9)


def test_model_scores_its_training_sequence_better_than_a_shuffled_copy(genome):
    seq = genome.fetch("BA000025.2", 1_000_000, 1_200_000)
    shuffled = bytes(np.random.default_rng(0).permutation(np.frombuffer(seq, dtype=np.uint8)))
    model = MarkovModel(8)
    model.fit_codes(encode_bases(seq))
    own_bits, own_n = model.score_codes(encode_bases(seq))
    shuffled_bits, shuffled_n = model.score_codes(encode_bases(shuffled))
    assert own_n == shuffled_n == len(seq) - 8
    assert own_bits / own_n < shuffled_bits / shuffled_n - 0.2


def test_positions_touching_a_non_acgt_base_are_skipped_in_fitting_and_scoring(genome):
    order = 5
    seq = bytearray(genome.fetch("BA000025.2", 0, 10_000))
    seq[5000] = ord("N")
    seq[7000] = ord("R")  # IUPAC ambiguity code
    model = MarkovModel(order)
    model.fit_codes(encode_bases(bytes(seq)))
    skipped = 2 * (order + 1)  # each odd base spoils its own position and the next `order` contexts
    assert model.fitted_bases == len(seq) - order - skipped
    assert model.score_codes(encode_bases(bytes(seq)))[1] == len(seq) - order - skipped


def test_soft_masked_lower_case_scores_exactly_like_upper_case(genome, splits):
    model = MarkovModel(6).fit(genome, splits["train"])
    seq = genome.fetch("BA000025.2", 2_100_000, 2_150_000)
    assert model.score_codes(encode_bases(seq.lower())) == model.score_codes(encode_bases(seq))


def test_reading_long_intervals_in_chunks_scores_every_position_once(genome, splits, monkeypatch):
    whole = MarkovModel(7).fit(genome, splits["train"]).bpb(genome, splits["test"])
    monkeypatch.setattr(markov, "CHUNK_BASES", 10_007)
    chunked_model = MarkovModel(7).fit(genome, splits["train"])
    chunked = chunked_model.bpb(genome, splits["test"])
    assert chunked["bases"] == whole["bases"] == sum(iv.end - iv.start for iv in splits["test"]) - 7
    assert chunked["bpb"] == pytest.approx(whole["bpb"], rel=1e-12)


def test_sparse_and_dense_counting_give_identical_tables(genome, monkeypatch):
    codes = encode_bases(genome.fetch("BA000025.2", 300_000, 400_000))
    dense = MarkovModel(9)
    dense.fit_codes(codes)
    monkeypatch.setattr(markov, "_DENSE_LIMIT", 0)
    sparse = MarkovModel(9)
    sparse.fit_codes(codes)
    assert all(np.array_equal(a, b) for a, b in zip(dense.counts, sparse.counts))
    assert int(dense.counts[9].sum()) == len(codes) - 9


def test_markov_eval_fits_on_train_and_reports_the_requested_split():
    result = markov_eval(HUMAN_FASTA, None, DataConfig(), order=6, split="valid")
    assert result["model"] == "markov-6" and result["split"] == "valid"
    assert 1.8 < result["bpb"] < 2.0
    assert result["bases"] == round(2_229_817 * 0.05) - 6
    with pytest.raises(ConfigError, match="unknown split 'dev'"):
        markov_eval(HUMAN_FASTA, None, DataConfig(), order=2, split="dev")


def test_bad_order_and_unscorable_intervals_are_user_errors():
    with pytest.raises(ConfigError, match="between 0 and"):
        MarkovModel(markov.MAX_ORDER + 1)
    source = SequenceSource({"chrN": b"ACGTNNNNNNNNACG"})
    with pytest.raises(DataError, match="no run of 5 consecutive"):
        MarkovModel(4).fit(source, [Interval("chrN", 0, 15)])

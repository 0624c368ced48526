"""Training / evaluation windows on the embedded human genome, batching, and text corpora."""

import pytest
import torch
from torch.utils.data import DataLoader

from hnet_genomics.config import DataConfig
from hnet_genomics.data import demo
from hnet_genomics.data.datasets import (
    EvalWindowDataset,
    PackedBatchSampler,
    RandomWindowDataset,
    collate_packed,
    collate_padded,
)
from hnet_genomics.data.encoding import reverse_complement
from hnet_genomics.data.genome import Genome
from hnet_genomics.data.intervals import Interval, make_splits
from hnet_genomics.data.text import TextCorpus
from hnet_genomics.errors import ConfigError, DataError

HUMAN = "BA000025.2"


@pytest.fixture(scope="module")
def human():
    return Genome(demo.HUMAN_FASTA)


@pytest.fixture(scope="module")
def splits(human):
    return make_splits(human, DataConfig())


def take(ds, n):
    it = iter(ds)
    return [next(it) for _ in range(n)]


def test_random_windows_come_from_the_train_intervals(human):
    train = [Interval(HUMAN, 10_000, 20_000), Interval(HUMAN, 1_500_000, 1_503_000)]
    ds = RandomWindowDataset(human, train, 512, DataConfig(rc_prob=0.0), seed=1)
    for item in take(ds, 40):
        ids = bytes(item["input_ids"].tolist())
        assert len(ids) == 512 and item["input_ids"].dtype == torch.long
        region = human.fetch(HUMAN, 10_000, 20_000) + b"|" + human.fetch(HUMAN, 1_500_000, 1_503_000)
        assert ids in region


def test_windows_are_uniform_over_bases_not_intervals(human):
    train = [Interval(HUMAN, 0, 1_000), Interval(HUMAN, 100_000, 191_000)]  # 1 vs 90,001 window starts
    ds = RandomWindowDataset(human, train, 1_000, DataConfig(rc_prob=0.0), seed=0)
    first = human.fetch(HUMAN, 0, 1_000)
    hits = sum(bytes(it["input_ids"].tolist()) == first for it in take(ds, 300))
    assert hits <= 3


def test_window_i_is_a_pure_function_of_seed_rank_and_index(human, splits):
    cfg = DataConfig()
    a = take(RandomWindowDataset(human, splits["train"], 256, cfg, seed=7), 12)
    resumed = take(RandomWindowDataset(human, splits["train"], 256, cfg, seed=7, start_index=5), 7)
    assert all(torch.equal(x["input_ids"], y["input_ids"]) for x, y in zip(a[5:], resumed))
    other_rank = take(RandomWindowDataset(human, splits["train"], 256, cfg, seed=7, rank=1, world_size=2), 12)
    other_seed = take(RandomWindowDataset(human, splits["train"], 256, cfg, seed=8), 12)
    assert not any(torch.equal(x["input_ids"], y["input_ids"]) for x, y in zip(a, other_rank))
    assert not any(torch.equal(x["input_ids"], y["input_ids"]) for x, y in zip(a, other_seed))


def test_global_batch_order_is_the_same_for_any_number_of_workers(human, splits):
    def batches(workers):
        ds = RandomWindowDataset(human, splits["train"], 128, DataConfig(), seed=3, batch_size=4)
        loader = DataLoader(ds, batch_size=4, num_workers=workers, collate_fn=collate_padded)
        it = iter(loader)
        return [next(it)["input_ids"] for _ in range(6)]

    serial, parallel = batches(0), batches(2)
    assert all(torch.equal(a, b) for a, b in zip(serial, parallel))


def test_reverse_complement_augmentation_happens_about_half_the_time(human):
    train = [Interval(HUMAN, 0, 300_000)]
    plain = take(RandomWindowDataset(human, train, 64, DataConfig(rc_prob=0.0), seed=4), 200)
    mixed = take(RandomWindowDataset(human, train, 64, DataConfig(rc_prob=0.5), seed=4), 200)
    forward = human.fetch(HUMAN, 0, 300_000)
    flipped = [bytes(m["input_ids"].tolist()) not in forward for m in mixed]
    assert 60 < sum(flipped) < 140
    rc_of_a_plain_window = reverse_complement(bytes(plain[0]["input_ids"].tolist()))
    assert rc_of_a_plain_window in reverse_complement(forward)


def test_intervals_shorter_than_the_window_are_skipped_and_all_too_short_is_an_error(human):
    ds = RandomWindowDataset(
        human, [Interval(HUMAN, 0, 100), Interval(HUMAN, 5_000, 6_000)], 500, DataConfig(rc_prob=0.0), seed=0
    )
    region = human.fetch(HUMAN, 5_000, 6_000)
    assert all(bytes(it["input_ids"].tolist()) in region for it in take(ds, 10))
    with pytest.raises(DataError, match=r"human_chr6p21_hla\.fa\.gz: window length 2,229,818 is longer than every"):
        RandomWindowDataset(human, [Interval(HUMAN, 0, 2_229_817)], 2_229_818, DataConfig(), seed=0)


def test_drop_policy_skips_windows_above_the_n_fraction(tmp_path, human):
    seq = human.fetch(HUMAN, 0, 4_000)
    seq = seq[:1_000] + b"N" * 1_000 + seq[2_000:]  # a real assembly gap
    (tmp_path / "gap.fa").write_bytes(b">g\n" + b"\n".join(seq[i : i + 80] for i in range(0, len(seq), 80)) + b"\n")
    g = Genome(tmp_path / "gap.fa")
    cfg = DataConfig(n_policy="drop", max_n_fraction=0.05, rc_prob=0.0)
    for it in take(RandomWindowDataset(g, [Interval("g", 0, 4_000)], 200, cfg, seed=0), 50):
        assert (it["input_ids"] == ord("N")).float().mean() <= 0.05
        assert torch.equal(it["loss_mask"], it["input_ids"] != ord("N"))
    only_gap = RandomWindowDataset(g, [Interval("g", 1_000, 2_000)], 200, cfg, seed=0)
    with pytest.raises(DataError, match="no window with at most 5% ambiguous bases"):
        take(only_gap, 1)


def test_eval_windows_cover_each_region_exactly_once(human, splits):
    ds = EvalWindowDataset(human, splits["valid"] + splits["test"], 10_000, DataConfig())
    covered = {}
    for i in range(len(ds)):
        item = ds[i]
        n = len(item["input_ids"])
        assert n <= 10_000 and bytes(item["input_ids"].tolist()) == human.fetch(HUMAN, item["start"], item["start"] + n)
        for pos in range(item["start"], item["start"] + n, 1000):
            covered[pos] = covered.get(pos, 0) + 1
    expected = sum(iv.end - iv.start for iv in splits["valid"] + splits["test"])
    assert int(ds.lengths().sum()) == expected
    assert set(covered.values()) == {1}
    assert ds[0]["chrom"] == HUMAN and ds[0]["start"] == splits["valid"][0].start


def test_collate_padded_right_pads_with_zero_and_masks_padding(human):
    ds = EvalWindowDataset(human, [Interval(HUMAN, 0, 1_300)], 1_000, DataConfig())
    batch = collate_padded([ds[0], ds[1]])
    assert batch["input_ids"].shape == (2, 1_000)
    assert batch["mask"][1].sum() == 300 and not batch["mask"][1, 300:].any()
    assert (batch["input_ids"][1, 300:] == 0).all() and not batch["loss_mask"][1, 300:].any()
    assert bytes(batch["input_ids"][1, :300].tolist()) == human.fetch(HUMAN, 1_000, 1_300)
    assert batch["chrom"] == [HUMAN, HUMAN] and batch["start"].tolist() == [0, 1_000]


def test_collate_packed_concatenates_with_cu_seqlens(human):
    ds = EvalWindowDataset(
        human, [Interval(HUMAN, 0, 1_300), Interval(HUMAN, 9_000, 9_500)], 1_000, DataConfig(emit_soft_mask=True)
    )
    batch = collate_packed([ds[i] for i in range(len(ds))])
    assert batch["cu_seqlens"].tolist() == [0, 1_000, 1_300, 1_800] and batch["cu_seqlens"].dtype == torch.int32
    assert batch["input_ids"].shape == batch["mask"].shape == batch["loss_mask"].shape == (1, 1_800)
    assert batch["mask"].all() and batch["soft_mask"].shape == (1, 1_800)
    assert bytes(batch["input_ids"][0, 1_300:].tolist()) == human.fetch(HUMAN, 9_000, 9_500)


def test_packed_batch_sampler_fills_token_budget_in_order(human):
    ds = EvalWindowDataset(human, [Interval(HUMAN, 0, 2_300), Interval(HUMAN, 5_000, 5_700)], 1_000, DataConfig())
    assert ds.lengths().tolist() == [1_000, 1_000, 300, 700]
    sampler = PackedBatchSampler(ds.lengths(), max_tokens=2_000)
    assert list(sampler) == [[0, 1], [2, 3]]
    loader = DataLoader(ds, batch_sampler=sampler, collate_fn=collate_packed)
    assert [b["cu_seqlens"].tolist() for b in loader] == [[0, 1_000, 2_000], [0, 300, 1_000]]
    with pytest.raises(ConfigError, match="does not fit"):
        PackedBatchSampler([3_000], max_tokens=2_000)


def test_text_corpus_windows_are_raw_utf8_bytes(tmp_path):
    (tmp_path / "corpus").mkdir()
    readme = (demo.DEMO_DIR / "README.md").read_bytes()
    (tmp_path / "corpus" / "a.txt").write_bytes(readme)
    (tmp_path / "corpus" / "b.txt").write_text("Größe, naïve façade — ünïcödé.\n" * 40)
    (tmp_path / "corpus" / ".hidden").write_text("skip me")
    corpus = TextCorpus(tmp_path / "corpus")
    assert corpus.records() == ["a.txt", "b.txt"]
    assert corpus.fetch("a.txt", 10, 60) == readme[10:60]
    cfg = DataConfig(kind="text", rc_prob=0.5)
    splits = make_splits(corpus, cfg)
    for item in take(RandomWindowDataset(corpus, splits["train"], 64, cfg, seed=0), 20):
        window = bytes(item["input_ids"].tolist())
        assert window in readme or window in (tmp_path / "corpus" / "b.txt").read_bytes()
    assert corpus.validate() == corpus.sizes


def test_text_corpus_rejects_binary_and_invalid_utf8(tmp_path):
    (tmp_path / "latin1.txt").write_bytes("line one\ncafé\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1\.txt:2: not UTF-8"):
        TextCorpus(tmp_path / "latin1.txt")
    (tmp_path / "genome.txt").write_bytes(demo.HUMAN_FASTA.read_bytes()[:1000])
    with pytest.raises(DataError, match=r"genome\.txt: binary file"):
        TextCorpus(tmp_path / "genome.txt")
    with pytest.raises(DataError, match="no such file"):
        TextCorpus(tmp_path / "missing")

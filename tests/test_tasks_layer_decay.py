"""Layer-wise learning-rate decay for fine-tuning: blocks are numbered in the order they run, the head keeps the
base rate, each block below it is scaled once more, and every trainable parameter is in exactly one group."""

import pytest

from hnet_genomics import build_model, load_config
from hnet_genomics.tasks.finetune import block_depths, layerwise_lr_groups
from hnet_genomics.tasks.heads import SequenceClassifier


def test_blocks_are_counted_in_the_order_they_run_encoder_main_decoder():
    model = build_model(load_config("dna/hnet_2stage_tiny"))  # m2 / (m2 / m3 / m2) / m2: 11 blocks
    depths, n = block_depths(model)
    assert n == 11 and depths["embeddings.weight"] == 0
    assert depths["backbone.encoder.blocks.0.mixer.in_proj.weight"] == 1
    assert depths["backbone.main.encoder.blocks.1.norm1.weight"] == 4
    assert depths["backbone.main.main.blocks.2.mixer.out_proj.weight"] == 7
    assert depths["backbone.main.decoder.blocks.0.mixer.D"] == 8
    assert depths["backbone.decoder.blocks.1.mixer.A_log"] == 11
    assert depths["backbone.main.routing.q_proj.weight"] == 4  # the chunking layer counts with its encoder
    assert depths["backbone.pad"] == depths["backbone.residual_proj.bias"] == 2
    assert depths["backbone.decoder.norm.weight"] == depths["lm_head.weight"] == 11
    assert set(depths) == {n for n, _ in model.named_parameters()}


@pytest.mark.parametrize("decay", [1.0, 0.8])
def test_head_at_base_rate_and_each_lower_block_decayed_once_more(decay):
    clf = SequenceClassifier(build_model(load_config("dna/hnet_1stage_tiny")), 2)
    groups = layerwise_lr_groups(clf, 1e-3, decay)
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in clf.parameters()) and len(set(ids)) == len(ids)
    assert groups[-1]["lr"] == 1e-3 and groups[-1]["params"] == list(clf.head.parameters())
    n = block_depths(clf.backbone)[1]
    assert groups[0]["lr"] == pytest.approx(1e-3 * decay ** (n + 1))  # embeddings, the lowest
    assert [g["lr"] for g in groups[:-1]] == pytest.approx([1e-3 * decay ** (n + 1 - d) for d in range(n + 1)])


def test_frozen_backbone_leaves_only_the_head():
    clf = SequenceClassifier(build_model(load_config("dna/mamba2_tiny")), 2, freeze_backbone=True)
    assert [len(g["params"]) for g in layerwise_lr_groups(clf, 1e-3, 0.8)] == [2]

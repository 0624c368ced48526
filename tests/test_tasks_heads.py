"""Task heads: pooling sees real bases only, chunk pooling uses H-Net chunks, a frozen backbone stays frozen."""

from __future__ import annotations

import pytest
import torch

from hnet_genomics import build_model, load_config
from hnet_genomics.errors import ConfigError
from hnet_genomics.tasks.batching import pad_batch
from hnet_genomics.tasks.heads import SequenceClassifier, last_real, masked_mean


@pytest.fixture(scope="module")
def hnet():
    torch.manual_seed(0)
    return build_model(load_config("dna/hnet_1stage_tiny")).eval()


@pytest.fixture
def two_sites(human_bases):
    return [human_bases[1000:1120], human_bases[5000:5200]]


@pytest.mark.parametrize("pooling", ["mean", "last", "chunk"])
def test_pooled_features_ignore_padding_bytes(hnet, two_sites, pooling):
    clf = SequenceClassifier(hnet, 2, pooling).eval()
    ids, mask = pad_batch(two_sites)
    garbage = ids.clone()
    garbage[~mask] = ord("G")
    with torch.no_grad():
        a, b = clf.features(ids, mask), clf.features(garbage, mask)
        alone = clf.features(*pad_batch(two_sites[:1]))
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a[0], alone[0], atol=1e-4, rtol=1e-4)


def test_masked_mean_and_last_real_select_real_positions_only():
    hidden = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)
    mask = torch.tensor([[True, True, False, False], [True, True, True, True]])
    torch.testing.assert_close(masked_mean(hidden, mask)[0], hidden[0, :2].mean(0))
    torch.testing.assert_close(last_real(hidden, mask), torch.stack([hidden[0, 1], hidden[1, 3]]))


def test_chunk_pooling_averages_stage1_chunk_vectors(hnet, two_sites):
    ids, mask = pad_batch(two_sites)
    with torch.no_grad():
        out = hnet(ids, mask=mask)
        feats = SequenceClassifier(hnet, 2, "chunk").features(ids, mask)
    n0 = int(out.level_masks[1][0].sum())
    assert 1 <= n0 < len(two_sites[0])  # really chunked
    torch.testing.assert_close(feats[0], out.chunk_hidden[0, :n0].mean(0))
    assert feats.shape[1] == hnet.config.d_model[1]


def test_chunk_pooling_on_isotropic_model_is_a_config_error():
    with pytest.raises(ConfigError, match="pooling 'chunk' needs an H-Net"):
        SequenceClassifier(build_model(load_config("dna/mamba2_tiny")), 2, "chunk")


def test_frozen_backbone_gets_no_gradient_and_stays_in_eval_mode(two_sites):
    torch.manual_seed(0)
    clf = SequenceClassifier(build_model(load_config("dna/hnet_1stage_tiny")), 2, "mean", freeze_backbone=True)
    clf.train()
    assert not clf.backbone.training and clf.head.training
    loss = clf(*pad_batch(two_sites)).sum()
    loss.backward()
    assert all(p.grad is None for p in clf.backbone.parameters())
    assert clf.head.weight.grad is not None

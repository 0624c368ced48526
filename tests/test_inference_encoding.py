"""The data encoding a model was trained with (case, ambiguity codes) is saved beside it and read back by every
inference command; a model saved without it reads sequence with today's defaults and says so."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from hnet_genomics import build_model, from_pretrained, load_config
from hnet_genomics.cli import main
from hnet_genomics.data import demo
from hnet_genomics.data.genome import Genome
from hnet_genomics.errors import CheckpointError
from hnet_genomics.export.regions import Region
from hnet_genomics.inference.engine import InferenceEngine
from hnet_genomics.inference.likelihood import likelihood_blocks

HLA = "BA000025.2"


@pytest.fixture(scope="module")
def soft_masked(tmp_path_factory):
    """1 kb of real HLA sequence whose middle 400 bases are soft-masked (lower case), as RepeatMasker writes it."""
    seq = Genome(demo.HUMAN_FASTA).fetch(HLA, 300_000, 301_000).upper().decode()
    seq = seq[:300] + seq[300:700].lower() + seq[700:]
    path = tmp_path_factory.mktemp("g") / "masked.fa"
    path.write_text(">m\n" + "\n".join(seq[i : i + 60] for i in range(0, len(seq), 60)) + "\n")
    return path


def model_with(encoding):
    torch.manual_seed(0)
    model = build_model(load_config("dna/hnet_1stage_tiny")).eval()
    model.data_encoding = encoding
    return model


def bits_of(model, seq: bytes) -> np.ndarray:
    ids = torch.tensor(list(seq))[None]
    with torch.inference_mode():
        logp = torch.log_softmax(model(ids).logits[0, :-1].double(), -1).gather(-1, ids[0, 1:, None])[:, 0]
    return np.concatenate(([np.nan], -logp.numpy() / math.log(2)))


def test_encoding_survives_save_and_load_and_a_bad_file_is_refused(tmp_path):
    encoding = {"kind": "dna", "soft_mask": "keep", "n_policy": "replace"}
    model_with(encoding).save_pretrained(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "encoding.json").read_text()) == encoding
    assert from_pretrained(tmp_path / "m").data_encoding == encoding
    model_with(None).save_pretrained(tmp_path / "old")
    assert not (tmp_path / "old" / "encoding.json").exists() and from_pretrained(tmp_path / "old").data_encoding is None
    (tmp_path / "m" / "encoding.json").write_text('{"soft_mask": "lower"}')
    with pytest.raises(CheckpointError, match=r"encoding.json: unreadable data encoding .*soft_mask"):
        from_pretrained(tmp_path / "m")
    (tmp_path / "m" / "encoding.json").write_text('{"rc_prob": 0.5}')
    with pytest.raises(CheckpointError, match=r"encoding.json: unreadable data encoding \(expected an object"):
        from_pretrained(tmp_path / "m")


def test_a_bos_token_survives_save_and_load_and_a_bad_one_is_refused(tmp_path):
    text = {"kind": "text", "soft_mask": "upper", "n_policy": "mask"}
    model = model_with(text)
    model.bos_token = 254
    model.save_pretrained(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "encoding.json").read_text()) == text | {"bos_token": 254}
    loaded = from_pretrained(tmp_path / "m")
    assert loaded.bos_token == 254 and loaded.data_encoding == text and loaded.reads_text
    model_with({"kind": "dna", "soft_mask": "upper", "n_policy": "mask"}).save_pretrained(tmp_path / "dna")
    assert from_pretrained(tmp_path / "dna").bos_token is None  # this package's models train without one
    for bad in ("256", "-1", '"254"', "true"):
        (tmp_path / "m" / "encoding.json").write_text(f'{{"kind": "text", "bos_token": {bad}}}')
        with pytest.raises(CheckpointError, match=rf"bos_token must be a token id from 0 to 255, got {bad}"):
            from_pretrained(tmp_path / "m")


def test_generate_samples_any_byte_from_a_text_model_and_acgt_from_a_dna_one():
    prompt = torch.tensor([list(b"ACGTTGCA")])
    samples = {}
    for kind, alphabet in (("text", None), ("dna", b"ACGT"), (None, b"ACGT")):
        model = model_with(None if kind is None else {"kind": kind, "soft_mask": "upper", "n_policy": "mask"})
        got = model.generate(prompt, 40, generator=torch.Generator().manual_seed(1))
        assert torch.equal(
            got, model.generate(prompt, 40, generator=torch.Generator().manual_seed(1), allowed=alphabet)
        )
        samples[kind] = set(got[0, 8:].tolist())
    assert samples["text"] - set(b"ACGT") and samples["dna"] <= set(b"ACGT") and samples[None] <= set(b"ACGT")
    with pytest.raises(ValueError, match="at least one token"):
        model.generate(prompt[:, :0], 3)  # nothing to continue from without a BOS token


@pytest.mark.parametrize("soft_mask", ["keep", "upper"])
def test_inference_reads_sequence_as_the_model_was_trained_to(soft_masked, soft_mask):
    model = model_with({"kind": "dna", "soft_mask": soft_mask, "n_policy": "mask"})
    genome = Genome(soft_masked)
    engine = InferenceEngine(model)
    assert engine.encoding_note is None and engine.data_cfg.soft_mask == soft_mask
    blocks = list(likelihood_blocks(engine, genome, [Region("m", 0, 1000)], 1024, 256))
    raw = genome.fetch("m", 0, 1000)
    expected = bits_of(model, raw if soft_mask == "keep" else raw.upper())
    np.testing.assert_allclose(np.concatenate([b.tracks["fwd"] for b in blocks]), expected, rtol=1e-5, atol=1e-5)
    other = bits_of(model, raw.upper() if soft_mask == "keep" else raw)
    assert not np.allclose(expected[310:700], other[310:700], atol=1e-3)  # the policy matters to the model


def test_a_model_saved_without_its_encoding_uses_the_defaults_and_the_command_says_so(soft_masked, tmp_path, capsys):
    model_with(None).save_pretrained(tmp_path / "old")
    engine = InferenceEngine(from_pretrained(tmp_path / "old"))
    assert (
        engine.data_cfg.soft_mask == "upper" and "did not record how its training read sequence" in engine.encoding_note
    )
    argv = ["likelihood", "--model", str(tmp_path / "old"), "--fasta", str(soft_masked), "--out", str(tmp_path / "lk")]
    assert main([*argv, "--formats", "bedgraph"]) == 0
    assert "note: " in capsys.readouterr().out
    model_with({"kind": "dna", "soft_mask": "upper", "n_policy": "mask"}).save_pretrained(tmp_path / "new")
    argv[2] = str(tmp_path / "new")
    assert main([*argv, "--formats", "bedgraph"]) == 0
    assert "note: " not in capsys.readouterr().out

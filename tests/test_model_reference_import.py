"""Checkpoints of the H-Net reference implementation (goombalab/hnet) imported with `import-reference` compute what
the reference computes: tiny random models in its format and the outputs its own code produced for them
(tests/fixtures/reference/, README.md there says how), matched by the imported model's forward pass, boundaries
and recurrent steps. Then the checkpoint conventions (.pt, wrappers, tied heads, omegaconf objects) and the refusals.
"""

from __future__ import annotations

import json
import pickle
import sys
import types
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from hnet_genomics.cli import main
from hnet_genomics.errors import CheckpointError, ConfigError
from hnet_genomics.kernels import ema
from hnet_genomics.model.lm import HNetLM
from hnet_genomics.model.reference_import import import_reference, name_table, read_checkpoint, reference_config

FIXTURES = Path(__file__).parent / "fixtures" / "reference"
CASES = ["hnet_1stage", "hnet_2stage"]


def files(case: str) -> tuple[Path, Path, dict[str, torch.Tensor]]:
    return (
        FIXTURES / f"{case}.weights.safetensors",
        FIXTURES / f"{case}.config.json",
        load_file(FIXTURES / f"{case}.expected.safetensors"),
    )


@pytest.fixture(scope="module", params=CASES)
def imported(request, tmp_path_factory):
    """(case, the model imported through the command line, the reference's outputs)."""
    weights, config, expected = files(request.param)
    out = tmp_path_factory.mktemp(request.param) / "model"
    argv = ["import-reference", "--checkpoint", str(weights), "--config", str(config), "--out", str(out)]
    assert main(argv) == 0
    return request.param, HNetLM.from_pretrained(out).eval(), expected


def with_reference_ema_clamp(monkeypatch):
    """The reference clamps the dechunk probability to [1e-4, 1 - 1e-4] (so a sequence's first chunk enters its
    EMA at 0.9999); ours keeps p = 1 there. Applying the same clamp isolates the mapping from that one choice."""
    chunked = ema.ema_scan_chunked
    monkeypatch.setattr(ema, "ema_scan_chunked", lambda x, p, chunk_size=64: chunked(x, p.clamp(1e-4, 1 - 1e-4)))


def test_logits_match_the_reference_to_float_precision_with_its_ema_clamp(imported, monkeypatch):
    case, model, expected = imported
    with_reference_ema_clamp(monkeypatch)
    with torch.no_grad():
        logits = model(expected["input_ids"]).logits
    scale = expected["logits"].abs().max()
    assert scale > 1  # logits far from zero: a wrong tensor would show
    assert (logits - expected["logits"]).abs().max() <= 1e-6 * scale + 1e-6, case


def test_logits_match_the_reference_without_the_clamp_up_to_the_first_chunk(imported):
    """Without the clamp only the first positions of each sequence differ, by about 1e-4 of the logits' scale."""
    case, model, expected = imported
    with torch.no_grad():
        logits = model(expected["input_ids"]).logits
    diff = (logits - expected["logits"]).abs()
    scale = expected["logits"].abs().max()
    assert diff.max() <= 2e-4 * scale, case
    assert diff[:, 8:].max() <= 2e-5 * scale, case


def test_boundaries_of_every_level_equal_the_reference(imported):
    case, model, expected = imported
    with torch.no_grad():
        out = model(expected["input_ids"])
    levels = len(model.config.target_compression)
    assert levels == (1 if case == "hnet_1stage" else 2)
    for s in range(levels):
        ref_mask, ref_prob = expected[f"boundary_mask.{s}"], expected[f"boundary_prob.{s}"]
        ours = (out.boundary_masks[s] & out.level_masks[s])[:, : ref_mask.shape[1]]
        assert torch.equal(ours, ref_mask), (case, s)
        valid = out.level_masks[s][:, : ref_mask.shape[1]]
        assert (out.boundary_probs[s][:, : ref_mask.shape[1]] - ref_prob)[valid].abs().max() < 1e-5
        assert 0 < int(ref_mask.sum()) < int(valid.sum())  # the level compresses, and not to nothing
    routed = model.route(expected["input_ids"])  # what `boundaries` runs
    assert all(torch.equal(r[0], o) for r, o in zip(routed, out.boundary_masks))


def test_recurrent_steps_match_the_references_decoding(imported, monkeypatch):
    """The reference prefills a prompt with its inference cache, then decodes byte by byte; our ``step`` (what
    ``generate`` runs) gives the same next-byte logits after the prompt and after every decoded byte."""
    case, model, expected = imported
    prompt, steps = expected["prompt_ids"], expected["step_ids"]
    state = model.init_state(1)
    with torch.no_grad():
        for t in range(prompt.shape[1]):
            logits, state = model.step(prompt[:, t], state)
        got = [logits]
        for t in range(steps.shape[1] - 1):
            logits, state = model.step(steps[:, t], state)
            got.append(logits)
    want = expected["step_logits"]
    assert (torch.stack(got, 1) - want).abs().max() <= 1e-6 * want.abs().max() + 1e-5, case
    monkeypatch.setattr(model, "bos_token", None)  # the fixture's decoding starts at the prompt, without BOS
    sampled = model.generate(prompt, 6, top_k=1, allowed=None)  # greedy: the argmax after the prompt first
    assert sampled.shape == (1, prompt.shape[1] + 6) and int(sampled[0, prompt.shape[1]]) == int(want[0, 0].argmax())


def test_the_imported_model_runs_the_track_commands(imported, tmp_path):
    case, model, _ = imported
    model.save_pretrained(tmp_path / "m")
    bases = "".join("ACGT"[i] for i in torch.randint(0, 4, (540,), generator=torch.Generator().manual_seed(0)))
    (tmp_path / "g.fa").write_text(f">chr\n{bases}\n")  # byte models read DNA as bytes too
    common = ["--model", str(tmp_path / "m"), "--fasta", str(tmp_path / "g.fa"), "--window", "128", "--quiet"]
    assert main(["boundaries", *common, "--out", str(tmp_path / "b"), "--formats", "bed"]) == 0
    assert main(["likelihood", *common, "--out", str(tmp_path / "l")]) == 0
    chunks = (tmp_path / "b.stage1.bed").read_text().splitlines()
    assert 10 < len(chunks) < 540  # 540 bytes cut into chunks, neither one nor every byte
    assert (tmp_path / "l.bits.fwd.bedGraph").stat().st_size > 0


def test_the_import_records_that_the_reference_starts_every_sequence_with_byte_254(tmp_path):
    weights, config, _ = files("hnet_1stage")
    import_reference(weights, config, tmp_path / "m")
    assert json.loads((tmp_path / "m" / "encoding.json").read_text()) == {"kind": "text", "bos_token": 254}
    model = HNetLM.from_pretrained(tmp_path / "m")
    assert model.bos_token == 254 and model.reads_text


def test_generate_reads_bos_first_and_returns_the_prompt_and_any_bytes_after_it(imported, monkeypatch):
    """What the reference's generation does: byte 254, then the prompt, then greedy bytes from all 256 values."""
    case, model, expected = imported
    prompt = expected["prompt_ids"]
    fed = []
    step = model.step
    monkeypatch.setattr(model, "step", lambda ids, state: (fed.append(ids.tolist()), step(ids, state))[1])
    got = model.generate(prompt, 8, temperature=0)
    assert fed[: prompt.shape[1] + 1] == [[254]] + [[int(b)] for b in prompt[0]], case
    monkeypatch.undo()
    with torch.no_grad():  # by hand: BOS, the prompt, then the argmax over every byte, step by step
        state = model.init_state(1)
        for token in [254, *prompt[0].tolist()]:
            logits, state = model.step(torch.tensor([token]), state)
        manual = []
        for _ in range(8):
            manual.append(int(logits[0].argmax()))
            logits, state = model.step(torch.tensor(manual[-1:]), state)
    assert got.shape == (1, prompt.shape[1] + 8) and torch.equal(got[:, : prompt.shape[1]], prompt)
    assert got[0, prompt.shape[1] :].tolist() == manual, case
    with torch.no_grad():  # BOS changes what the model predicts after the prompt
        without = model(prompt).logits[0, -1]
        after_bos = model(torch.cat([torch.tensor([[254]]), prompt], 1)).logits[0, -1]
    assert (without - after_bos).abs().max() > 1e-3, case
    assert model.generate(prompt[:, :0], 3, temperature=0).shape == (1, 3)  # BOS alone is a prompt


def test_text_evaluation_reads_each_window_after_bos_and_scores_every_byte(imported, tmp_path):
    """``eval --text`` of an imported model: each window is read after byte 254, as the reference reads text,
    so its first byte is scored too."""
    import math

    from hnet_genomics.config import DataConfig
    from hnet_genomics.data.intervals import Interval
    from hnet_genomics.data.text import TextCorpus
    from hnet_genomics.training.evaluate import evaluate_bpb

    case, model, _ = imported
    text = (Path(__file__).parents[1] / "ARCHITECTURE.md").read_bytes()[:3000].decode("utf-8", "ignore").encode()
    (tmp_path / "t.txt").write_bytes(text)
    got = evaluate_bpb(
        model, TextCorpus(tmp_path / "t.txt"), [Interval("t.txt", 0, len(text))], 1024, DataConfig(kind="text")
    )
    nll, levels = 0.0, None
    with torch.no_grad():
        for start in range(0, len(text), 1024):
            ids = torch.tensor([[254, *text[start : start + 1024]]])
            out = model(ids)
            nll += float(torch.nn.functional.cross_entropy(out.logits[0, :-1], ids[0, 1:], reduction="sum"))
            # the BOS is a chunk of its own at every level: the ratios are those of the text's bytes and chunks
            assert all(bool(b[0, 0]) for b in out.boundary_masks)
            counts = [int(m.sum()) - 1 for m in out.level_masks]
            levels = counts if levels is None else [a + b for a, b in zip(levels, counts)]
    assert levels is not None and levels[0] == len(text)
    assert got["compression_ratios"] == pytest.approx([a / b for a, b in zip(levels, levels[1:])], rel=1e-9)
    assert got["bases_scored"] == len(text) and got["windows"] == 3
    assert got["bpb"] == pytest.approx(nll / len(text) / math.log(2), rel=1e-5), case


# ---- checkpoint conventions -----------------------------------------------------------------------------


def test_a_pt_state_dict_with_a_ddp_prefix_and_a_stored_tied_head_imports_to_the_same_model(tmp_path):
    weights, config, _ = files("hnet_2stage")
    state = load_file(weights)
    state["lm_head.weight"] = state["embeddings.weight"].clone()  # nn.Module.state_dict() lists tied tensors twice
    torch.save({"model": {f"module.{k}": v.to(torch.bfloat16) for k, v in state.items()}}, tmp_path / "ckpt.pt")
    import_reference(tmp_path / "ckpt.pt", config, tmp_path / "from_pt")
    import_reference(weights, config, tmp_path / "from_st")
    a, b = load_file(tmp_path / "from_pt" / "model.safetensors"), load_file(tmp_path / "from_st" / "model.safetensors")
    assert a.keys() == b.keys() and "lm_head.weight" not in a
    assert all(a[k].dtype == torch.bfloat16 and torch.equal(a[k], b[k].to(torch.bfloat16)) for k in a)
    model = HNetLM.from_pretrained(tmp_path / "from_pt")  # bf16 weights into the fp32 model
    assert next(model.parameters()).dtype == torch.float32 and model.lm_head.weight is model.embeddings.weight


@pytest.fixture
def omegaconf_stand_in(monkeypatch):
    """A module named like omegaconf's, so that a checkpoint holding one of its objects can be written here."""
    module = types.ModuleType("omegaconf.listconfig")

    class ListConfig:
        def __init__(self, content):
            self._content = list(content)

    ListConfig.__module__, ListConfig.__qualname__ = "omegaconf.listconfig", "ListConfig"
    module.ListConfig = ListConfig
    monkeypatch.setitem(sys.modules, "omegaconf", types.ModuleType("omegaconf"))
    monkeypatch.setitem(sys.modules, "omegaconf.listconfig", module)
    return ListConfig


def test_omegaconf_objects_beside_the_tensors_are_read_inert(tmp_path, omegaconf_stand_in):
    """The reference's generate.py allows omegaconf's ListConfig when loading; weights-only loading reads such
    objects as placeholders (nothing of theirs runs) and the tensors as usual."""
    weights, _, _ = files("hnet_1stage")
    state = load_file(weights)
    w = torch.nn.Parameter(state["embeddings.weight"].clone())
    w.lr_multiplier = omegaconf_stand_in([2.0, 1.0])  # a tensor attribute, pickled with it
    torch.save({**state, "embeddings.weight": w}, tmp_path / "ckpt.pt")
    del sys.modules["omegaconf.listconfig"]  # the real package is not needed to read the file
    loaded = read_checkpoint(tmp_path / "ckpt.pt")
    assert loaded.keys() == state.keys() and torch.equal(loaded["embeddings.weight"], state["embeddings.weight"])
    placeholder = loaded["embeddings.weight"].lr_multiplier
    assert type(placeholder).__name__ == "ListConfig" and placeholder.state == {"_content": [2.0, 1.0]}


class Payload:
    """Would run when unpickled without the weights-only restriction."""

    def __reduce__(self):
        return (Path("ran").touch, ())


def test_a_checkpoint_with_other_objects_is_refused_without_running_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"embeddings.weight": torch.zeros(2), "extra": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match=r"evil\.pt: holds objects other than tensors"):
        read_checkpoint(tmp_path / "evil.pt")
    assert not (tmp_path / "ran").exists()
    (tmp_path / "junk.pt").write_bytes(pickle.dumps([1, 2], protocol=2) + b"\x00garbage")
    with pytest.raises(CheckpointError, match=r"junk\.pt: "):
        read_checkpoint(tmp_path / "junk.pt")


def _variant(tmp_path: Path, edit) -> tuple[Path, Path]:
    weights, config, _ = files("hnet_1stage")
    state, cfg = load_file(weights), json.loads(config.read_text())
    edit(state, cfg)
    save_file(state, tmp_path / "w.safetensors")
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    return tmp_path / "w.safetensors", tmp_path / "c.json"


@pytest.mark.parametrize(
    "edit,error",
    [
        (lambda s, c: s.update(extra=torch.zeros(3)), r"w\.safetensors: 1 tensor\(s\) the config does not account for"),
        (lambda s, c: s.pop("backbone.residual_proj.bias"), r"not in the checkpoint, e\.g\. 'backbone\.residual_proj"),
        (lambda s, c: c.update(d_model=[32, 96]), r"w\.safetensors: '\S+' has shape \(\d+(, \d+)*\) but the config"),
        (lambda s, c: c.update(tie_embeddings=True) or s.update({"lm_head.weight": -s["embeddings.weight"]}), "diff"),
    ],
    ids=["left over", "missing", "shape", "tied head differs"],
)
def test_tensors_that_do_not_fit_the_config_are_refused_naming_one(tmp_path, edit, error):
    weights, config = _variant(tmp_path, edit)
    with pytest.raises(CheckpointError, match=error):
        import_reference(weights, config, tmp_path / "out")
    assert not (tmp_path / "out").exists()


TWO_STAGES = {"arch_layout": ["m1", ["m1"], "m1"], "d_model": [64, 64], "d_intermediate": [0, 0]}


@pytest.mark.parametrize(
    "raw,error",
    [
        ({"arch_layout": ["m1"], "d_model": [64], "d_intermediate": [0], "foo": 1}, "unknown key 'foo'"),
        ({"arch_layout": ["m1"], "d_model": [64]}, "'d_intermediate' is missing"),
        (
            {**TWO_STAGES, "ssm_cfg": {"d_state": [16, 32]}},
            r"ssm_cfg\.d_state differs between stages",
        ),
        (
            {
                "arch_layout": ["t1"],
                "d_model": [64],
                "d_intermediate": [0],
                "attn_cfg": {"num_heads": 4, "window_size": 0},
            },
            r"window_size\[0\] is 0",
        ),
        ({"arch_layout": ["x1"], "d_model": [64], "d_intermediate": [0]}, "cannot parse block string 'x1'"),
    ],
)
def test_reference_configs_are_checked_key_by_key(raw, error):
    with pytest.raises(ConfigError, match=error):
        reference_config(raw, "c.json")


def test_reference_config_conventions():
    cfg = reference_config(json.loads((FIXTURES / "hnet_1stage.config.json").read_text()), "c.json")
    assert cfg.d_intermediate == [128, 128]  # the reference's SwiGLU rounds 48 up to a multiple of 128
    assert (cfg.ssm.head_dim, cfg.ssm.ngroups) == (64, 1)  # mamba-ssm's defaults
    assert cfg.attn.rotary_dim == [16, 16] and cfg.attn.window_size == [15, -1]
    assert cfg.target_compression == [6.0]  # the paper's target for one level
    released = {"arch_layout": ["m4", ["T1m4", ["T27"], "m4T1"], "m4"], "d_model": [1024, 1536, 2048]}
    xl = reference_config(
        released | {"d_intermediate": [0, 4096, 5504], "attn_cfg": {"num_heads": 16, "rotary_emb_dim": [32, 48, 64]}},
        "hnet_2stage_XL.json",
    )
    assert xl.d_intermediate == [0, 4096, 5504] and xl.attn.num_heads == [16, 16, 16]
    assert xl.target_compression == [3.0, 3.0] and xl.ssm.d_state == 128
    with torch.device("meta"):  # the full-size model, without memory: its tensors are exactly the mapped ones
        model = HNetLM(xl)
    assert {ours for ours, _ in name_table(xl).values()} == set(model.state_dict())
    assert 1.60e9 < model.num_parameters() < 1.61e9


def test_the_card_of_an_imported_model_says_it_reads_text(tmp_path):
    """An imported model has no pretraining run of ours: its card learns from encoding.json that it reads text."""
    from hnet_genomics.model.publish import gather

    weights, config, _ = files("hnet_1stage")
    import_reference(weights, config, tmp_path / "m")
    card = gather(tmp_path / "m", repo_id="lab/hnet-1stage").card
    assert "A tokenizer-free byte-level text language model" in card and "- text" in card
    assert "- genomics\n" not in card and "--fasta" not in card

"""Initialisation follows the H-Net reference: N(0, 0.02) Linears, residual-branch outputs shrunk by the square
root of the residual layers counted the reference's way (outer encoders/decoders included), Conv1d-style conv
bias and nn.Linear-style skip bias."""

import math

import pytest
import torch

from hnet_genomics.config import AttnConfig, ModelConfig, SSMConfig
from hnet_genomics.model.lm import HNetLM

SSM = SSMConfig(d_state=16, expand=2, d_conv=4, chunk_size=32, head_dim=16)


def config(layout, d_model, d_intermediate, heads):
    n = len(d_model)
    return ModelConfig(
        arch_layout=layout,
        d_model=d_model,
        d_intermediate=d_intermediate,
        ssm=SSM,
        attn=AttnConfig(num_heads=heads, rotary_dim=[8] * n, window_size=[-1] * n),
        target_compression=[3.0, 2.0][: n - 1],
    )


# stage network -> residual layers the reference counts for it (one per mixer, one more per MLP)
CASES = {
    "paper 1-stage DNA m3t1/m15/m4": (
        config(["m3t1", ["m15"], "m4"], [64, 96], [0, 0], [4, 6]),
        {"backbone.encoder": 8, "backbone.decoder": 8, "backbone.main": 8 + 15},
    ),
    "paper 2-stage DNA": (
        config(["m3t1", ["m3t1", ["m15"], "m4"], "m4"], [48, 64, 96], [0, 0, 0], [4, 4, 6]),
        {
            "backbone.encoder": 8,
            "backbone.decoder": 8,
            "backbone.main.encoder": 16,
            "backbone.main.decoder": 16,
            "backbone.main.main": 16 + 15,
        },
    ),
    "MLP blocks count twice (byte model m4/T22/m4)": (
        config(["m4", ["T22"], "m4"], [64, 96], [0, 128], [4, 6]),
        {"backbone.encoder": 8, "backbone.decoder": 8, "backbone.main": 8 + 44},
    ),
    "isotropic Mamba-2 m10": (config(["m10"], [96], [0], [6]), {"backbone": 10}),
    "isotropic Transformer T9": (config(["T9"], [96], [256], [6]), {"backbone": 18}),
}


def close_std(weight: torch.Tensor, expected: float, name: str) -> None:
    # sample std of n normal draws has relative standard error ~ 1/sqrt(2n): 5 % is > 4 standard errors here
    got = weight.float().std().item()
    assert got == pytest.approx(expected, rel=0.05), f"{name}: std {got:.5f}, expected {expected:.5f}"


@pytest.mark.parametrize("case", list(CASES))
def test_residual_branch_outputs_scale_with_the_reference_layer_count(case):
    torch.manual_seed(0)
    cfg, layers = CASES[case]
    model = HNetLM(cfg)
    modules = dict(model.named_modules())
    checked = 0
    for prefix, n in layers.items():
        for b, block in enumerate(modules[prefix].blocks):
            for proj in block.residual_outputs():
                close_std(proj.weight, 0.02 / math.sqrt(n), f"{prefix}.blocks.{b}")
                checked += 1
            inputs = [block.mixer.in_proj if block.spec.kind == "m" else block.mixer.qkv]
            inputs += [block.mlp.fc1] if block.mlp is not None else []
            for proj in inputs:  # the other projections stay at 0.02 whatever the depth
                close_std(proj.weight, 0.02, f"{prefix}.blocks.{b} input")
    assert checked == sum(len(b.residual_outputs()) for m in model.modules() if hasattr(m, "blocks") for b in m.blocks)
    close_std(model.lm_head.weight, 0.02, "lm_head")
    close_std(model.embeddings.weight, 1.0, "embeddings")


def test_deeper_networks_start_with_smaller_residual_branches():
    torch.manual_seed(0)
    shallow = HNetLM(config(["m4"], [96], [0], [6])).backbone.blocks[0].mixer.out_proj.weight.std()
    deep = HNetLM(config(["m16"], [96], [0], [6])).backbone.blocks[0].mixer.out_proj.weight.std()
    assert deep.item() == pytest.approx(shallow.item() / 2, rel=0.05)


def test_skip_bias_and_conv_bias_start_like_the_reference_and_router_stays_identity():
    torch.manual_seed(0)
    cfg = CASES["paper 2-stage DNA"][0]
    model = HNetLM(cfg)
    for hnet, d in ((model.backbone, 48), (model.backbone.main, 64)):
        bias = hnet.residual_proj.bias
        assert torch.count_nonzero(hnet.residual_proj.weight) == 0  # the skip's weight starts silent
        assert bias.abs().max() <= 1 / math.sqrt(d) and bias.std() > 0.4 / math.sqrt(
            d
        )  # U(+-1/sqrt(d)): std 0.58/sqrt(d)
        assert torch.equal(hnet.routing.q_proj.weight, torch.eye(d))
    conv_biases = torch.cat([m.conv_bias for m in model.modules() if hasattr(m, "conv_bias")])
    bound = 1 / math.sqrt(SSM.d_conv)
    assert conv_biases.abs().max() <= bound
    assert conv_biases.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)  # uniform, not zeros

"""Roles of parameters the name table does not know: inferred from module, shape and use, or a loud error."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hyperzoo.graphs import UnmappedModuleError, graph_from_module


def op_of(graph, name: str) -> str:
    return graph.op_names[graph.param_names.index(name)]


class Attention(nn.Module):
    """A ViT-style block with names no table lists: q/v biases, a learned logit bias, a temperature, layer scales."""

    def __init__(self, dim: int = 8, heads: int = 2, tokens: int = 5) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.register_buffer("k_bias", torch.zeros(dim), persistent=False)
        self.attention_biases = nn.Parameter(torch.zeros(heads, tokens * tokens))
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.proj = nn.Linear(dim, dim)
        self.gamma_1 = nn.Parameter(torch.full((dim,), 0.1))

    def forward(self, x):
        b, n, c = x.shape
        bias = torch.cat((self.q_bias, self.k_bias, self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        logits = (q @ k.transpose(-2, -1)) * self.temperature
        logits = logits + self.attention_biases.view(self.heads, n, n)
        out = (logits.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c)
        return x + self.gamma_1 * self.proj(out)


class ResponseNorm(nn.Module):
    """A new normalization layer (global response norm) with an affine ``weight``/``bias``."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(c))
        self.bias = nn.Parameter(torch.zeros(c))

    def forward(self, x):
        g = x.norm(p=2, dim=(2, 3), keepdim=True)
        n = g / (g.mean(dim=1, keepdim=True) + 1e-6)
        return x + torch.addcmul(self.bias.view(1, -1, 1, 1), self.weight.view(1, -1, 1, 1), x * n)


class Affine(nn.Module):
    """ResMLP's affine: ``beta + alpha * x`` in one ``addcmul``."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, 1, c))
        self.beta = nn.Parameter(torch.zeros(1, 1, c))

    def forward(self, x):
        return torch.addcmul(self.beta, self.alpha, x)


class StdConv(nn.Conv2d):
    """A weight-standardised convolution with a per-output-channel ``gain`` ``[out, 1, 1, 1]`` (NFNet)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(cin, cout, 3, padding=1)
        self.gain = nn.Parameter(torch.ones(cout, 1, 1, 1))

    def forward(self, x):
        w = F.batch_norm(
            self.weight.reshape(1, self.out_channels, -1), None, None, weight=(self.gain * 0.5).view(-1), training=True
        ).reshape_as(self.weight)
        return F.conv2d(x, w, self.bias, padding=1)


class Tokens(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 8)
        self.dist_token = nn.Parameter(torch.zeros(1, 1, 8))
        self.pos_embed_0 = nn.Parameter(torch.zeros(1, 6, 8))
        self.block = Attention(tokens=6)

    def forward(self, x):
        x = self.embed(x)
        x = torch.cat((self.dist_token.expand(x.shape[0], -1, -1), x), dim=1) + self.pos_embed_0
        return self.block(x)


def test_transformer_roles_from_use(accounted):
    model = Tokens()
    g = graph_from_module(model, inputs=torch.randn(2, 5, 4))
    assert accounted(model, g) and g.unmapped == []
    assert op_of(g, "block.q_bias") == op_of(g, "block.v_bias") == "bias"  # the bias slot of the qkv linear
    assert op_of(g, "block.attention_biases") == "rel_pos_bias"  # added to attention logits
    assert op_of(g, "block.temperature") == "logit_scale"  # multiplies attention logits
    assert op_of(g, "block.gamma_1") == "layer_scale"  # channel-wise product with an activation
    assert op_of(g, "dist_token") == "cls_token"  # concatenated to the token sequence
    assert op_of(g, "pos_embed_0") == "pos_enc"  # [1, N, C] added to the tokens


def test_norm_affine_scale_and_bias_roles(accounted):
    model = nn.Sequential(nn.Conv2d(3, 4, 1), ResponseNorm(4), StdConv(4, 4), nn.Flatten(2), Affine(64))
    g = graph_from_module(model, input_size=8)
    assert accounted(model, g) and g.unmapped == []
    assert op_of(g, "1.weight") == "ln" and "1.bias" not in g.param_names  # the bias goes with the weight
    assert op_of(g, "2.gain") == "layer_scale"  # not a 1x1 conv kernel
    assert op_of(g, "2.weight") == "conv"
    assert op_of(g, "4.alpha") == "layer_scale" and op_of(g, "4.beta") == "bias"


def test_overrides_win_over_inference():
    model = Tokens()
    g = graph_from_module(model, inputs=torch.randn(2, 5, 4), param_ops={"block.temperature": "param"})
    assert op_of(g, "block.temperature") == "param"


class Odd(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.table = nn.Parameter(torch.randn(4, 1, 1))

    def forward(self, x):
        return self.conv(x) + torch.sort(self.table, dim=0)[0]


def test_parameters_without_a_role_fail_the_build_by_default():
    with pytest.raises(UnmappedModuleError) as info:
        graph_from_module(Odd(), input_size=4)
    msg = str(info.value)
    assert "table: module <root> (Odd), shape [4, 1, 1]" in msg
    assert "param_ops={'table':" in msg and "strict=False" in msg
    g = graph_from_module(Odd(), input_size=4, strict=False)
    assert g.unmapped == ["table"] and g.unmapped_modules == ["<root> (Odd)"]


def test_unused_parameters_are_listed_not_errors():
    class Spare(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 4)
            self.spare = nn.Linear(4, 4)  # registered, never called

        def forward(self, x):
            return self.fc(x)

    g = graph_from_module(Spare(), inputs=torch.randn(2, 3))
    assert g.unmapped == [] and g.unused == ["spare.weight", "spare.bias"]


def test_known_models_keep_their_graphs():
    """Inference only runs for parameters the table does not map: a torchvision model's ops are unchanged."""
    from hyperzoo.nets import create_model

    model = create_model("convnext_tiny", num_classes=10, adapt_cifar=True)
    g = graph_from_module(model)
    assert g.op_histogram()["layer_scale"] == 18  # ``layer_scale`` is a table name: one node per block
    assert all(op in ("conv", "sep_conv", "bias", "ln", "layer_scale", "input", "sum", "glob_avg") for op in g.op_names)


def test_reference_mode_keeps_to_the_name_table():
    model = Tokens()
    with pytest.raises(UnmappedModuleError, match="block.q_bias"):
        graph_from_module(model, inputs=torch.randn(2, 5, 4), infer_roles=False)
    g = graph_from_module(model, inputs=torch.randn(2, 5, 4), infer_roles=False, strict=False)
    assert "block.gamma_1" in g.unmapped and "block.q_bias" in g.unmapped and "block.q_bias" not in g.param_names

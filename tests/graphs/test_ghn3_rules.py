"""The reference GHN-3's graph rules on small networks (no shared data needed)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torchvision.models import mobilenet_v3_small
from torchvision.models.convnext import CNBlockConfig, ConvNeXt
from torchvision.models.vision_transformer import VisionTransformer

warnings.filterwarnings("ignore", message=r".*`torch.jit.script` is deprecated.*", category=FutureWarning)

from hyperzoo.ghn import GHN  # noqa: E402
from hyperzoo.graphs import graph_from_module  # noqa: E402
from hyperzoo.graphs.ghn3_rules import ghn3_graph_from_module, reference_shape_4d  # noqa: E402


def tiny_vit() -> VisionTransformer:
    torch.manual_seed(0)
    return VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32).eval()


def test_squeeze_excitation_has_no_global_average_node():
    model = mobilenet_v3_small().eval()
    g3 = ghn3_graph_from_module(model)
    ops = g3.op_histogram()
    assert ops["glob_avg"] == 1  # only the classifier's pooling; the 9 SE squeezes are contracted
    assert ops["cse"] == 9
    assert g3.unmapped == [] and g3.graph_rules == "ghn3"
    assert graph_from_module(model).op_histogram()["glob_avg"] > 1  # the GHN-2 rules keep them


def test_vit_positional_embedding_and_class_token():
    model = tiny_vit()
    g = ghn3_graph_from_module(model, input_size=32)
    names, ops = list(g.param_names), g.op_names
    v = names.index("encoder.pos_embedding")
    assert ops[v] == "pos_enc" and ops[v + 1] == "sum"  # the reference's extra sum after the embedding
    assert g.shape[v].tolist() == [1, 16, 4, 4] == list(reference_shape_4d((1, 17, 16)))
    assert "glob_avg" not in ops and "class_token" not in names
    assert g.unmapped == ["class_token"]


def test_convnext_layer_scale_is_not_a_node_and_layernorm2d_is_ln():
    torch.manual_seed(0)
    model = ConvNeXt([CNBlockConfig(8, 16, 1), CNBlockConfig(16, None, 1)], num_classes=10).eval()
    g = ghn3_graph_from_module(model, input_size=32)
    assert sorted(g.unmapped) == ["features.1.0.layer_scale", "features.3.0.layer_scale"]
    ln = [n for n, op in zip(g.param_names, g.op_names) if op == "ln"]
    assert "features.0.1.weight" in ln and "features.2.0.weight" in ln  # LayerNorm2d modules


def test_a_ghn3_rules_ghn_predicts_every_mapped_tensor_of_a_vit():
    torch.manual_seed(0)
    ghn = GHN(
        hid=16, max_shape=(16, 16, 16, 16), num_classes=10, hypernet="graphormer", decoder="conv3",
        layers=1, heads=2, graph_rules="ghn3",
    ).eval()  # fmt: skip
    model = tiny_vit()
    graph = ghn.graph(model, input_size=32)
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="class_token"), torch.no_grad():
        pred = ghn.predict_batch([model], [graph], allow_unpredicted=True)[0]
    params = dict(model.named_parameters())
    assert set(pred) == set(params) - {"class_token"}
    assert all(pred[k].shape == params[k].shape for k in pred)
    pos = pred["encoder.pos_embedding"]
    assert pos.shape == (1, 17, 16) and torch.isfinite(pos).all()
    torch.manual_seed(0)
    token = torch.normal(0.0, 0.02, size=(1, 1, 16))
    assert torch.equal(pos[:, :1], token)  # the class-token row: the first draw of the global generator

from torch import nn
from torchvision.models.convnext import LayerNorm2d

from hyperzoo.graphs.param_ops import function_prefix, param_op


def test_modules_map_like_the_reference():
    assert param_op(nn.Conv2d(4, 4, 3), "weight") == "conv"
    assert param_op(nn.Conv2d(4, 4, 3), "bias") == "bias"
    assert param_op(nn.Conv2d(4, 4, 3, groups=4), "weight") == "sep_conv"
    assert param_op(nn.Conv2d(4, 4, 3, groups=4, dilation=2), "weight") == "dil_conv"
    assert param_op(nn.Linear(2, 2), "weight") == "conv"
    assert param_op(nn.BatchNorm2d(2), "weight") == "bn"
    assert param_op(nn.LayerNorm(2), "weight") == "ln"
    assert param_op(LayerNorm2d(2), "weight") == "ln"
    assert param_op(nn.MultiheadAttention(4, 2), "in_proj_weight") == "conv"
    assert param_op(nn.MultiheadAttention(4, 2), "in_proj_bias") == "bias"


def test_extensions_and_overrides():
    module = nn.Module()
    assert param_op(module, "class_token") == "cls_token"
    assert param_op(module, "relative_position_bias_table") == "rel_pos_bias"
    assert param_op(module, "layer_scale") == "layer_scale"
    assert param_op(nn.Embedding(3, 2), "weight") == "embedding"
    assert param_op(module, "alpha") is None
    assert param_op(module, "alpha", "blocks.0.alpha", {"blocks.*.alpha": "param"}) == "param"


def test_function_prefix():
    assert function_prefix("AddBackward0") == "Add"
    assert function_prefix("MaxPool2DWithIndicesBackward0") == "MaxPool2DWithIndices"
    assert function_prefix("input") == "input"

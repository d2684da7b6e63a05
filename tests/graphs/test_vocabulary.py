import pytest

from hyperzoo.errors import UnknownNameError
from hyperzoo.graphs.vocabulary import (
    EXTENSIONS,
    LEGACY_OP_NAMES,
    OP_ID,
    PRIMITIVES,
    REFERENCE_PRIMITIVES,
    canonical_op_name,
    op_id,
)

REFERENCE = [
    "max_pool",
    "avg_pool",
    "sep_conv",
    "dil_conv",
    "conv",
    "msa",
    "cse",
    "sum",
    "concat",
    "input",
    "bias",
    "bn",
    "ln",
    "pos_enc",
    "glob_avg",
]


def test_reference_ids_never_move():
    assert list(PRIMITIVES[:15]) == REFERENCE == list(REFERENCE_PRIMITIVES)
    assert PRIMITIVES[15:] == EXTENSIONS
    assert len(set(PRIMITIVES)) == len(PRIMITIVES)
    assert all(OP_ID[name] == i for i, name in enumerate(PRIMITIVES))


@pytest.mark.parametrize(
    ("legacy", "current"),
    [
        ("conv_5x5", "conv"),
        ("conv_1x1", "conv"),
        ("conv_7x1_1x7", "conv"),
        ("sep_conv_3x3", "sep_conv"),
        ("dil_conv_5x5", "dil_conv"),
        ("max_pool_3x3", "max_pool"),
        ("avg_pool_3x3", "avg_pool"),
        ("fc-b", "bias"),
        ("bn", "bn"),
    ],
)
def test_legacy_names(legacy, current):
    assert canonical_op_name(legacy) == current
    assert op_id(legacy) == OP_ID[current]
    assert all(v in OP_ID for v in LEGACY_OP_NAMES.values())


def test_unknown_op_names_say_what_is_known():
    with pytest.raises(UnknownNameError, match="known ops: max_pool"):
        canonical_op_name("relu")
    with pytest.raises(UnknownNameError, match="out of range"):
        op_id(len(PRIMITIVES))
    assert op_id(3) == 3

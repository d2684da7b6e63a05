"""The graphs equal the reference GHN-2's (ppuda) node by node and edge by edge (``shared/conformance``)."""

import json
from functools import lru_cache
from pathlib import Path

import pytest

from hyperzoo.graphs import graph_from_module
from hyperzoo.nets import create_model

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CONFORMANCE = SHARED / "conformance" / "ppuda_ghn2_seed0.json"

pytestmark = pytest.mark.skipif(
    not CONFORMANCE.is_file(),
    reason=f"conformance data not found ({CONFORMANCE.name} beside the repo in shared/)",
)


@lru_cache(maxsize=1)
def reference() -> dict:
    return json.loads(CONFORMANCE.read_text())


def check(graph, name: str) -> None:
    ref = reference()["models"][name]
    ours = graph.to_json_dict()
    assert ours["num_nodes"] == ref["num_nodes"]
    assert ours["nodes"] == ref["nodes"]
    assert ours["param_names"] == ref["param_names"]
    assert ours["edges"] == ref["edges"]


def test_vocabulary_is_the_reference_one():
    from hyperzoo.graphs import PRIMITIVES

    assert list(PRIMITIVES[:15]) == reference()["primitives"]


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenet_v2", "densenet121", "vgg11_bn", "squeezenet1_1"])
def test_torchvision_graphs_equal_reference(name):
    model = create_model(name, num_classes=10, adapt_cifar=True)
    graph = graph_from_module(model)
    assert graph.input_size == [3, 32, 32]
    assert graph.unmapped == []
    check(graph, name)


def test_darts_graph_equals_reference():
    deepnets1m = pytest.importorskip("hyperzoo.nets.deepnets1m", reason="DeepNets-1M Network not available yet")
    if not hasattr(deepnets1m, "Network") or not hasattr(deepnets1m, "DARTS"):
        pytest.skip("hyperzoo.nets.deepnets1m has no Network/DARTS yet")
    model = deepnets1m.Network(C=16, num_classes=10, genotype=deepnets1m.DARTS, n_cells=8, is_imagenet_input=False)
    graph = graph_from_module(model, input_size=32)
    check(graph, "darts")

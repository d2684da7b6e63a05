"""Every torchvision classifier maps to a graph with every parameter tensor accounted for (224 and 32x32)."""

import gc

import pytest
import torchvision

from hyperzoo.graphs import graph_from_module
from hyperzoo.nets import create_model

ALL = torchvision.models.list_models(module=torchvision.models)
# One small member per family: SE nets, transformers, inception-style concat, ConvNeXt layer scale.
REPRESENTATIVE = [
    "mobilenet_v3_small",
    "efficientnet_b0",
    "googlenet",
    "convnext_tiny",
    "swin_t",
    "vit_b_32",
]
# (nodes, real edges, edges with virtual ones) of the reference at 224x224 (reference/ghn.md A.7)
REFERENCE_224 = {"resnet18": (53, 60, 1354), "squeezenet1_1": (65, 72, 2048)}


def build_and_check(name: str, adapt: bool, accounted) -> None:
    model = create_model(name, num_classes=10, adapt_cifar=True) if adapt else create_model(name)
    graph = graph_from_module(model)
    assert graph.input_size[-1] == (32 if adapt else 224)
    assert accounted(model, graph), graph.unmapped
    assert graph.unmapped == [], f"{name}: unmapped {graph.unmapped}"
    assert graph.op_names[0] == "input" and graph.op_names.count("input") == 1
    del model, graph
    gc.collect()


@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_representative_families_at_32(name, accounted):
    build_and_check(name, True, accounted)


@pytest.mark.parametrize("name", sorted(REFERENCE_224))
def test_counts_at_224_equal_reference(name):
    graph = graph_from_module(create_model(name))
    nodes, real, total = REFERENCE_224[name]
    assert (graph.num_nodes, int((graph.edge_dist == 1).sum()), graph.edge_index.shape[1]) == (
        nodes,
        real,
        total,
    )


def test_there_are_80_torchvision_models():
    assert len(ALL) >= 80


@pytest.mark.slow
@pytest.mark.parametrize("adapt", [False, True], ids=["224", "32"])
@pytest.mark.parametrize("name", ALL)
def test_every_torchvision_model(name, adapt, accounted):
    build_and_check(name, adapt, accounted)

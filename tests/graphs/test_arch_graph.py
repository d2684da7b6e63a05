import pytest
import torch
from torch_geometric.data import Batch

from hyperzoo.errors import ConfigError
from hyperzoo.graphs import OP_ID, ArchGraph, distance_matrix, shape_to_4d


def residual_block(**kw) -> ArchGraph:
    """input -> conv -> bn -> conv -> sum(<- bn) -> glob_avg -> fc -> fc bias, nodes given out of order."""
    ops = ["conv", "input", "bn", "conv", "sum", "glob_avg", "conv", "fc-b"]
    names = ["a.weight", "", "b.weight", "c.weight", "", "", "fc.weight", "fc.bias"]
    shapes = [(8, 3, 3, 3), None, (8,), (8, 8, 1, 1), None, None, (10, 8), (10,)]
    edges = [(1, 0), (0, 2), (2, 3), (3, 4), (2, 4), (4, 5), (5, 6), (6, 7)]
    return ArchGraph.from_dag(ops, names, shapes, edges, name="block", **kw)


def test_from_dag_sorts_and_adds_virtual_edges():
    g = residual_block()
    assert g.op_names == ["input", "conv", "bn", "conv", "sum", "glob_avg", "conv", "bias"]
    assert g.param_names[1] == "a.weight" and g.param_names[-1] == "fc.bias"
    assert g.num_nodes == 8 and g.name == "block"
    assert bool((g.edge_index[0] < g.edge_index[1]).all())
    real = g.real_edges().t().tolist()
    assert real == [[0, 1], [1, 2], [2, 3], [2, 4], [3, 4], [4, 5], [5, 6], [6, 7]]
    d = distance_matrix(g)
    assert d[0, 7] == 6 and d[2, 4] == 1 and d[0, 4] == 3 and d[4, 0] == 0
    # edges are sorted by (src, dst), like the reference's edge list
    keys = (g.edge_index[0] * 100 + g.edge_index[1]).tolist()
    assert keys == sorted(keys)


def test_shapes_are_encoded_in_4d():
    g = residual_block()
    assert g.shape.shape == (8, 4)
    assert g.shape[0].tolist() == [0, 0, 0, 0]
    assert g.shape[2].tolist() == [8, 1, 1, 1]
    assert g.shape[6].tolist() == [10, 8, 1, 1]
    assert shape_to_4d((1, 197, 768)) == (1, 768, 14, 14)
    assert shape_to_4d((4, 3, 3, 3, 3)) == (4, 3, 3, 9)
    assert g.has_param.tolist() == [False, True, True, True, False, False, True, True]


def test_s_max_truncation_and_json():
    g = residual_block()
    assert int(g.edge_dist.max()) == 6
    g2 = g.with_s_max(2)
    assert int(g2.edge_dist.max()) == 2 and g2.s_max == 2
    assert residual_block(s_max=2).to_json_dict() == g2.to_json_dict()
    assert residual_block(s_max=1).edge_index.shape[1] == 8
    j = g.to_json_dict()
    assert set(j) == {"num_nodes", "nodes", "param_names", "edges"}
    assert [0, 1, 1] in j["edges"] and [0, 7, 6] in j["edges"]


def test_batching_offsets_edges():
    g = residual_block()
    b = Batch.from_data_list([g, g.with_s_max(1)])
    assert b.num_nodes == 16 and b.num_graphs == 2
    assert b.op.shape == (16,) and b.shape.shape == (16, 4)
    assert int(b.edge_index.min()) == 0 and int(b.edge_index.max()) == 15
    assert b.edge_dist.shape[0] == g.edge_index.shape[1] + 8
    assert b.param_names[1][1] == "a.weight"
    assert b.get_example(1).op_names == g.op_names


def test_sort_false_keeps_order_and_checks_it():
    g = ArchGraph.from_dag(["input", "conv"], ["", "w"], [None, (2, 3, 1, 1)], [(0, 1)], sort=False)
    assert g.op.tolist() == [OP_ID["input"], OP_ID["conv"]]
    with pytest.raises(ConfigError, match="topological order"):
        ArchGraph.from_dag(["conv", "input"], ["w", ""], [(2, 3), None], [(1, 0)], sort=False)


def test_bad_input_raises_config_errors():
    with pytest.raises(ConfigError, match="one entry per node"):
        ArchGraph.from_dag(["input"], [], [None], [])
    with pytest.raises(ConfigError, match="outside"):
        ArchGraph.from_dag(["input"], [""], [None], [(0, 3)])
    with pytest.raises(ConfigError, match="cycle"):
        ArchGraph.from_dag(["input", "sum"], ["", ""], [None, None], [(0, 1), (1, 0)])
    with pytest.raises(ConfigError, match="s_max"):
        residual_block().with_s_max(0)


def test_empty_edges_and_tensor_edges():
    g = ArchGraph.from_dag(["input"], [""], [None], [])
    assert g.num_nodes == 1 and g.edge_index.shape == (2, 0)
    g2 = ArchGraph.from_dag(["input", "conv"], ["", "w"], [None, (1, 1)], torch.tensor([[0], [1]]))
    assert g2.edge_dist.tolist() == [1]

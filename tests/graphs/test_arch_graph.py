import pytest
import torch
from torch_geometric.data import Batch

from hyperzoo.errors import ConfigError
from hyperzoo.graphs import OP_ID, ArchGraph, distance_matrix, shape_to_4d
from hyperzoo.graphs.arch_graph import as_graph_list, batch_graphs


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


def test_batch_graphs_offsets_edges_and_keeps_python_values_per_graph():
    g, h = residual_block(), residual_block().with_s_max(1)
    g.net_args, h.net_args = {"C": 16, "genotype": {"normal": [["conv", 0]]}}, {"model": "resnet20"}
    g.index, h.index = 3, 7  # a store position: not a node id, so never offset
    b = batch_graphs([g, h])
    assert isinstance(b, Batch) and isinstance(b, ArchGraph) and b.num_graphs == 2
    assert b.ptr.tolist() == [0, 8, 16] and b.batch.tolist() == [0] * 8 + [1] * 8
    torch.testing.assert_close(b.edge_index, torch.cat([g.edge_index, h.edge_index + 8], dim=1))
    torch.testing.assert_close(b.edge_dist, torch.cat([g.edge_dist, h.edge_dist]))
    assert b.net_args == [g.net_args, h.net_args] and b.index == [3, 7] and b.s_max == [g.s_max, h.s_max]
    for original, back in zip([g, h], b.to_data_list()):
        assert type(back) is ArchGraph and sorted(back.keys()) == sorted(original.keys())
        for key in original.to_dict():
            a, c = original[key], back[key]
            assert type(a) is type(c) and (torch.equal(a, c) if isinstance(a, torch.Tensor) else a == c), key
    assert b[1].net_args == {"model": "resnet20"} and b[1].index == 7


def test_plain_batch_from_data_list_offsets_only_edge_ids():
    g = residual_block()
    g.index = 5
    b = Batch.from_data_list([g, g])
    assert b.index.tolist() == [5, 5]  # PyG's default would add the node count to anything named *index
    assert int(b.edge_index[:, g.edge_index.shape[1] :].min()) == 8


def test_batch_graphs_refuses_nothing_and_batches():
    with pytest.raises(ConfigError, match="one or more ArchGraphs"):
        batch_graphs([])
    with pytest.raises(ConfigError, match="one or more ArchGraphs"):
        batch_graphs([batch_graphs([residual_block(), residual_block()])])
    g = residual_block()
    assert as_graph_list(g) == [g] and len(as_graph_list(batch_graphs([g, g]))) == 2

import networkx as nx
import numpy as np
import pytest
import torch

from hyperzoo.graphs.topology import shortest_path_lengths, topological_depth, topological_order


def random_dag(n: int, p: float, seed: int) -> tuple[np.ndarray, torch.Tensor]:
    """A random DAG on nodes 0..n-1 whose indices are shuffled (so index order is not topological)."""
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.random((n, n)) < p, k=1)
    perm = rng.permutation(n)
    adj = np.zeros((n, n), dtype=bool)
    adj[np.ix_(perm, perm)] = upper
    src, dst = np.nonzero(adj)
    return adj, torch.tensor(np.stack([src, dst]), dtype=torch.long)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("s_max", [None, 1, 3, 50])
def test_shortest_paths_match_networkx(seed, s_max):
    n = 40 + 7 * seed
    adj, edge_index = random_dag(n, 0.08, seed)
    dist = shortest_path_lengths(n, edge_index, s_max)
    ref = torch.zeros(n, n, dtype=torch.long)
    g = nx.DiGraph(adj.astype(float))
    for u, lengths in nx.all_pairs_shortest_path_length(g, cutoff=s_max):
        for v, d in lengths.items():
            ref[u, v] = d
    assert torch.equal(dist, ref)


@pytest.mark.parametrize("seed", range(6))
def test_topological_order_is_networkx_order(seed):
    n = 30 + 5 * seed
    adj, edge_index = random_dag(n, 0.1, seed)
    # the reference builds nx.DiGraph from a dense matrix and sorts it
    assert topological_order(n, edge_index) == list(nx.topological_sort(nx.DiGraph(adj.astype(float))))


def test_cycle_is_rejected():
    with pytest.raises(ValueError, match="cycle"):
        topological_order(3, [(0, 1), (1, 2), (2, 0)])
    with pytest.raises(ValueError, match="cycle"):
        topological_depth(2, torch.tensor([[0, 1], [1, 0]]))


def test_depth_is_longest_path():
    edge_index = torch.tensor([[0, 0, 1, 2], [1, 3, 2, 3]])
    assert topological_depth(4, edge_index).tolist() == [0, 1, 2, 3]
    assert shortest_path_lengths(4, edge_index)[0].tolist() == [0, 1, 2, 1]


@pytest.mark.parametrize("seed", range(4))
def test_cyclic_graphs_fall_back_to_bfs(seed):
    n = 25
    rng = np.random.default_rng(seed)
    adj = rng.random((n, n)) < 0.1
    np.fill_diagonal(adj, False)
    adj[0, 1] = adj[1, 0] = True  # at least one cycle
    src, dst = np.nonzero(adj)
    dist = shortest_path_lengths(n, torch.tensor(np.stack([src, dst])), 4)
    ref = torch.zeros(n, n, dtype=torch.long)
    for u, lengths in nx.all_pairs_shortest_path_length(nx.DiGraph(adj.astype(float)), cutoff=4):
        for v, d in lengths.items():
            ref[u, v] = d
    assert torch.equal(dist, ref)

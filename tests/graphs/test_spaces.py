"""Architecture spaces: their points are the torchvision networks, the canonical graph hash, hold-out, rebuild."""

from __future__ import annotations

import random
import sys
import textwrap

import pytest
import torch

from hyperzoo.errors import ConfigError
from hyperzoo.graphs import graph_from_module
from hyperzoo.graphs.generate_space import generate_space, holdout_hashes, space_candidate
from hyperzoo.graphs.graph_hash import graph_hash
from hyperzoo.graphs.store import GraphStore
from hyperzoo.nets import create_model
from hyperzoo.nets.spaces import build_space_network, get_space, list_spaces, resnet_net_args


def _hash(net: torch.nn.Module, s_max: int = 50) -> str:
    return graph_hash(graph_from_module(net, input_size=32, s_max=s_max))


def _meta_hash(net_args: dict) -> str:
    return graph_hash(graph_from_module(build_space_network(net_args, device="meta"), input_size=32, meta=True))


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "wide_resnet50_2"])
def test_resnet_space_holds_the_torchvision_networks(name):
    space = get_space("resnet")
    assert _meta_hash(space.holdout[name]) == _hash(create_model(name, num_classes=10, adapt_cifar=True))


def test_mobilenet_space_holds_mobilenet_v2():
    space = get_space("mobilenet")
    assert _meta_hash(space.holdout["mobilenet_v2"]) == _hash(create_model("mobilenet_v2", num_classes=10,
                                                                           adapt_cifar=True))  # fmt: skip


def test_graph_hash_ignores_parameter_values_and_s_max_but_not_the_architecture():
    torch.manual_seed(0)
    a = create_model("resnet18", num_classes=10, adapt_cifar=True)
    torch.manual_seed(1)
    b = create_model("resnet18", num_classes=10, adapt_cifar=True)
    assert not torch.equal(a.conv1.weight, b.conv1.weight)
    assert _hash(a) == _hash(b) == _hash(b, s_max=1)
    assert _hash(a) != _hash(create_model("resnet18", num_classes=100, adapt_cifar=True))  # classifier shape
    assert _hash(a) != _hash(create_model("resnet34", num_classes=10, adapt_cifar=True))


def test_graph_hash_is_invariant_to_node_numbering():
    g = graph_from_module(create_model("resnet18", num_classes=10, adapt_cifar=True), input_size=32, s_max=1)
    # swap two nodes that have no path between them (the two branches of the first downsampling block) by
    # renumbering: a valid topological order other than the graph's own
    n = int(g.num_nodes)
    perm = list(range(n))
    src, dst = g.edge_index.tolist()
    succ = {v: [d for s, d in zip(src, dst) if s == v] for v in range(n)}
    for v in range(n):  # a node with two successors that do not depend on each other
        if len(succ[v]) == 2:
            x, y = succ[v]
            if y not in succ[x] and x not in succ[y] and y == x + 1:
                perm[x], perm[y] = y, x
                break
    assert perm != list(range(n))
    g2 = g.clone()
    inv = torch.tensor(perm)
    g2.op = torch.empty_like(g.op)
    g2.op[inv] = g.op
    g2.shape = torch.empty_like(g.shape)
    g2.shape[inv] = g.shape
    g2.edge_index = inv[g.edge_index]
    assert graph_hash(g2) == graph_hash(g)


def test_sampled_networks_rebuild_from_their_stored_net_args():
    for j in range(3):
        for space in ("resnet", "mobilenet"):
            args, graph = space_candidate(space, j, seed=5)
            assert args == space_candidate(space, j, seed=5)[0]  # a pure function of (space, seed, j)
            assert _meta_hash(args) == args["hash"] == graph_hash(graph)


def test_forced_resnet50_draws_are_held_out(tmp_path, monkeypatch):
    space = get_space("resnet")
    small = resnet_net_args("basic", [1, 1, 1, 1], base=16)

    def forced(rng: random.Random):  # every other draw is exactly ResNet-50
        args = resnet_net_args() if rng.random() < 0.5 else {**small, "layers": [1, 1, rng.randint(1, 30), 1]}
        return build_space_network(args, light=True), args

    monkeypatch.setattr(space, "sample", forced)
    out = generate_space("resnet", 4, tmp_path / "r.h5", progress=False, part_size=2)
    store = GraphStore(out)
    banned = holdout_hashes("resnet")["resnet50"]
    hashes = [store.net_args(i)["hash"] for i in range(len(store))]
    assert len(store) == 4 and banned not in hashes
    assert int(store.attrs["holdout_rejected_last_run"]) >= 1
    assert "resnet50" in store.attrs["holdout"]
    kept = generate_space("resnet", 4, tmp_path / "all.h5", progress=False, holdout=False)
    assert banned in [GraphStore(kept).net_args(i)["hash"] for i in range(4)]


def test_user_space_by_import_path(tmp_path, monkeypatch):
    (tmp_path / "my_space_mod.py").write_text(
        textwrap.dedent("""
        from torch import nn

        def tiny(rng):
            hidden = rng.choice([8, 16, 32])
            return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, hidden), nn.ReLU(), nn.Linear(hidden, 10)), {
                "hidden": hidden}
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_space_mod", raising=False)
    out = generate_space("my_space_mod:tiny", 3, tmp_path / "u.h5", progress=False)
    store = GraphStore(out)
    assert len(store) == 3 and "my_space_mod:tiny" in list_spaces()
    for i in range(3):
        args = store.net_args(i)
        net = build_space_network(args)
        assert net[1].out_features == args["hidden"]
        assert _hash(net) == args["hash"]
    with pytest.raises(ConfigError, match="cannot import"):
        get_space("no_such_module_xyz:f")


def test_cli_generates_a_space(tmp_path, capsys):
    from hyperzoo.cli import main

    assert main(["graphs", "generate", "--space", "mobilenet", "--num", "2", "--out", str(tmp_path / "m.h5"),
                 "--no-progress"]) == 0  # fmt: skip
    assert "2 mobilenet graphs" in capsys.readouterr().out
    assert GraphStore(tmp_path / "m.h5").net_args(0)["space"] == "mobilenet"


def test_an_interrupted_space_generation_resumes_to_the_same_store(tmp_path, monkeypatch):
    from hyperzoo.graphs import generate as gen

    fresh = generate_space("mobilenet", 4, tmp_path / "fresh.h5", progress=False, part_size=2)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(gen, "_merge", killed)  # the parts are written, the run dies before the final store
        with pytest.raises(KeyboardInterrupt):
            generate_space("mobilenet", 4, tmp_path / "r.h5", progress=False, part_size=2)
    assert len(list((tmp_path / "r.h5.parts").glob("part-*.h5"))) == 2
    resumed = GraphStore(generate_space("mobilenet", 4, tmp_path / "r.h5", progress=False, part_size=2))
    assert int(resumed.attrs["graphs_per_s_last_run"]) == 0  # nothing left to generate
    assert [resumed.net_args(i) for i in range(4)] == [GraphStore(fresh).net_args(i) for i in range(4)]


def test_holdout_set_store_holds_exactly_the_held_out_networks(tmp_path, capsys):
    from hyperzoo.cli import main
    from hyperzoo.lightning.ghn_module import build_target

    out = tmp_path / "held.h5"
    assert main(["graphs", "generate", "--space", "mobilenet", "--holdout-set", "--out", str(out)]) == 0
    assert "mobilenet_v2" in capsys.readouterr().out
    store = GraphStore(out)
    assert [store[i].name for i in range(len(store))] == ["mobilenet_v2"]
    args = store.net_args(0)
    assert args["hash"] == holdout_hashes("mobilenet")["mobilenet_v2"] == graph_hash(store[0])
    net = build_target(args, num_classes=10)  # what GHN validation builds from the store
    assert sum(p.numel() for p in net.parameters()) == sum(
        p.numel() for p in get_space("mobilenet").holdout_module("mobilenet_v2").parameters()
    )
    with pytest.raises(SystemExit, match="needs --space"):
        main(["graphs", "generate", "--split", "train", "--holdout-set", "--out", str(tmp_path / "x.h5")])


def test_holdout_set_of_a_user_space_with_callable_holdouts_rebuilds(tmp_path):
    from torch import nn

    from hyperzoo.graphs.generate_space import holdout_store
    from hyperzoo.lightning.ghn_module import build_target
    from hyperzoo.nets.spaces import register_space

    def sample(rng):
        hidden = rng.choice([8, 16])
        return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, hidden), nn.ReLU(), nn.Linear(hidden, 10)), {}

    def held():
        return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 24), nn.ReLU(), nn.Linear(24, 10))

    register_space("test_holdout_callable_mlps", sample, holdout={"mlp24": held})
    store = GraphStore(holdout_store("test_holdout_callable_mlps", tmp_path / "h.h5"))
    args = store.net_args(0)
    assert store[0].name == "mlp24" and args["holdout"] == "mlp24"
    net = build_target(args, num_classes=10)
    assert [tuple(p.shape) for p in net.parameters()] == [tuple(p.shape) for p in held().parameters()]

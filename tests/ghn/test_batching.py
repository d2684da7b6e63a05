"""A meta-batch of graphs through PyG's ``Batch`` predicts what one graph at a time predicts, for every variant."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

warnings.filterwarnings("ignore", message=r".*`torch.jit.script` is deprecated.*", category=FutureWarning)

from torch_geometric.data import Batch  # noqa: E402

from hyperzoo.ghn import create_ghn  # noqa: E402
from hyperzoo.graphs.arch_graph import batch_graphs  # noqa: E402
from hyperzoo.nets import create_model  # noqa: E402

TINY = {"hid": 16, "max_shape": (16, 16, 3, 3)}
VARIANTS = [("ghn1", {}), ("ghn2", {}), ("mlp", {}), ("ghn3_t", {"layers": 1, "heads": 2})]


@pytest.fixture(scope="module")
def models() -> list[torch.nn.Module]:
    return [create_model(name, num_classes=10) for name in ("resnet8", "resnet20", "wrn16_2")]


@pytest.mark.parametrize("variant, extra", VARIANTS)
def test_batched_prediction_equals_one_graph_at_a_time(models, variant, extra):
    torch.manual_seed(0)
    ghn = create_ghn(variant, **TINY, **extra).eval()
    graphs = [ghn.graph(m) for m in models]
    batch = batch_graphs(graphs)
    with torch.no_grad():
        alone = [ghn.predict_parameters(g, m) for g, m in zip(graphs, models)]
        from_list = ghn.predict_batch(models, graphs)
        from_batch = ghn.predict_batch(models, batch)
        rows = ghn.embed_nodes(batch)
        rows_alone = torch.cat([ghn.embed_nodes(g) for g in graphs])
    torch.testing.assert_close(rows, rows_alone)
    for one, a, b in zip(alone, from_list, from_batch):
        assert one.keys() == a.keys() == b.keys() and len(one) > 0
        for name in one:
            torch.testing.assert_close(a[name], one[name])
            torch.testing.assert_close(b[name], one[name])


def test_batch_gradients_equal_one_graph_at_a_time(models):
    torch.manual_seed(0)
    ghn = create_ghn("ghn2", **TINY).train()
    graphs = [ghn.graph(m) for m in models]

    def grads(preds: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        ghn.zero_grad()
        sum(p.square().sum() for pred in preds for p in pred.values()).backward()
        return {k: p.grad.clone() for k, p in ghn.named_parameters() if p.grad is not None}

    alone = grads([ghn.predict_parameters(g, m) for g, m in zip(graphs, models)])
    batched = grads(ghn.predict_batch(models, batch_graphs(graphs)))
    assert alone.keys() == batched.keys() and any(k.startswith("gnn.") for k in alone)
    for k in alone:
        torch.testing.assert_close(batched[k], alone[k], rtol=1e-4, atol=1e-5)


def test_a_batch_keeps_each_graphs_nodes_in_order(models):
    ghn = create_ghn("ghn2", **TINY).eval()
    graphs = [ghn.graph(m) for m in models]
    batch = batch_graphs(graphs)
    assert isinstance(batch, Batch) and batch.num_graphs == 3
    sizes = [int(g.num_nodes) for g in graphs]
    assert batch.ptr.tolist() == [0, sizes[0], sizes[0] + sizes[1], sum(sizes)]
    with torch.no_grad():
        assert ghn.embed_nodes(batch).shape == (sum(sizes), TINY["hid"])


def test_importing_the_ghn_first_shows_no_pyg_jit_warning():
    """PyG's ``torch.jit.script`` FutureWarning is filtered even when ``ghn.py`` imports torch_geometric first."""
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [sys.executable, "-W", "error::FutureWarning", "-c", "import hyperzoo.ghn.ghn"],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert run.returncode == 0, run.stderr[-2000:]

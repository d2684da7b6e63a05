"""The GHN training loader hands each step's architectures over as one PyG ``Batch``; the step takes it as a list."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch_geometric.data import Batch

from hyperzoo.data import GraphImageDataModule
from hyperzoo.lightning import GHNModule

warnings.filterwarnings("ignore", ".*does not have many workers.*")


@pytest.mark.filterwarnings("ignore:.*`self.log\\(\\)` but the `self.trainer` reference is not registered")
def test_loader_collates_graphs_into_a_batch_and_the_step_equals_a_list(tiny_graphs: Path) -> None:
    dm = GraphImageDataModule(train_graphs=str(tiny_graphs), root="sample", batch_size=8, meta_batch=3, limit=32)
    images, labels, graphs = next(iter(dm.train_dataloader()))
    assert isinstance(graphs, Batch) and 1 <= graphs.num_graphs <= 3
    assert all(isinstance(a, dict) for a in graphs.net_args) and graphs.ptr[-1] == graphs.num_nodes
    images, labels = dm.on_after_batch_transfer((images, labels), 0)
    torch.manual_seed(0)
    module = GHNModule("ghn2", ghn_kwargs={"hid": 16, "max_shape": [16, 16, 3, 3]}, widths=[8, 16])
    torch.manual_seed(1)  # the same dropout / drop-path draws in both steps
    from_batch = module.training_step((images, labels, graphs), 0)
    torch.manual_seed(1)
    from_list = module.training_step((images, labels, graphs.to_data_list()), 0)
    assert from_batch is not None and from_list is not None and torch.isfinite(from_batch)
    torch.testing.assert_close(from_batch, from_list)

"""A tiny training graph store shared by the GHN training tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_graphs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 DeepNets-1M training graphs of at most 2 cells (fast networks), generated once per session."""
    from hyperzoo.graphs.generate import generate_split

    out = tmp_path_factory.mktemp("graphs") / "tiny.h5"
    return generate_split("train", 12, out, max_cells=2, progress=False)

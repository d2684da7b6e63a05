"""Pareto front and budget selection."""

from __future__ import annotations

import json

import pytest

from hyperzoo.errors import ConfigError, DataError
from hyperzoo.stitch.select import load_table, pareto_front, plot_front, select

ROWS = [
    {"id": 0, "key": "a0", "flops": 10.0, "acc": 0.60, "anchor": True},
    {"id": 1, "key": "a1", "flops": 40.0, "acc": 0.80, "anchor": True},
    {"id": 2, "key": "s1", "flops": 20.0, "acc": 0.70},
    {"id": 3, "key": "s2", "flops": 25.0, "acc": 0.65},  # dominated by s1
    {"id": 4, "key": "s3", "flops": 30.0, "acc": 0.82},  # beats the bigger anchor
]


def test_pareto_front() -> None:
    assert [r["key"] for r in pareto_front(ROWS)] == ["a0", "s1", "s3"]


def test_select_under_budget() -> None:
    assert select(ROWS, 26)["key"] == "s1"
    assert select(ROWS, 1e9)["key"] == "s3"
    with pytest.raises(ConfigError, match="cheapest"):
        select(ROWS, 5)


def test_table_roundtrip_and_plot(tmp_path) -> None:
    path = tmp_path / "configs.json"
    path.write_text(json.dumps({"configs": ROWS}))
    assert load_table(path) == ROWS
    plot_front(ROWS, tmp_path / "front.png")
    assert (tmp_path / "front.png").stat().st_size > 1000
    with pytest.raises(DataError, match="not found"):
        load_table(tmp_path / "missing.json")

"""The analysis scripts behind RESULTS tables compute what they say (synthetic runs, no training)."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.paths import REPO


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "experiments" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(module: ModuleType, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", [module.__name__, *argv])
    module.main()


def _metrics(path: Path, val: dict[int, float], test: float | None = None) -> None:
    path.mkdir(parents=True)
    fields = ["epoch", "step", "val/acc", "test/acc"]
    with (path / "metrics.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for step, acc in val.items():
            w.writerow({"epoch": 0, "step": step - 1, "val/acc": acc, "test/acc": ""})
        if test is not None:
            w.writerow({"epoch": 0, "step": 0, "val/acc": "", "test/acc": test})


def test_plot_finetune_pairs_seeds_and_takes_the_test_accuracy_last(tmp_path, monkeypatch, capsys):
    plot = _script("plot_finetune")
    runs = tmp_path / "runs"
    for seed, (g, d) in enumerate([(0.40, 0.55), (0.42, 0.58), (0.41, 0.56)]):
        for init, acc in (("ghn", g), ("default", d)):
            run = runs / "m" / init / f"seed{seed}"
            _metrics(run / "csv", {49: acc - 0.1, 98: acc - 0.05}, test=acc)
            (run / "done").touch()
    _metrics(runs / "m" / "ghn" / "seed9" / "csv", {49: 0.9})  # unfinished: no `done`, left out
    _run(plot, ["m", "--runs", str(runs), "--final-step", "391", "--out", str(tmp_path / "p.png")], monkeypatch)
    out = capsys.readouterr().out
    assert "3 seeds (seed0, seed1, seed2)" in out and (tmp_path / "p.png").stat().st_size > 0
    last = next(line for line in out.splitlines() if line.startswith("| 391 |"))
    diffs = [-15.0, -16.0, -15.0]  # paired by seed: t(2) * sd / sqrt(3)
    half = 4.303 * (sum((x - sum(diffs) / 3) ** 2 for x in diffs) / 2) ** 0.5 / math.sqrt(3)
    assert "41.00 +- 1.00" in last and "56.33 +- 1.53" in last and f"-15.33 (+- {half:.2f})" in last


def test_learning_curve_fits_log_steps(tmp_path, monkeypatch, capsys):
    curve = _script("ghn_learning_curve")
    evals = []
    for steps, acc in ((100, 0.20), (1000, 0.25), (10000, 0.30)):  # exactly 5 points per 10x
        path = tmp_path / f"e{steps}.json"
        path.write_text(json.dumps({"results": [{"name": "resnet50", "model": "resnet50", "top1": acc}]}))
        evals.append(f"{steps}={path}")
    argv = [a for e in evals for a in ("--eval", e)] + ["--model", "resnet50", "--out", str(tmp_path / "c.png")]
    _run(curve, argv, monkeypatch)
    out = capsys.readouterr().out
    assert "top-1 = 10.00 + 5.00 * log10(steps)" in out and "at 100000 steps (10x): 35.0%" in out
    a, b, s = curve.fit_loglinear([(100, 20.0), (1000, 25.0), (10000, 30.0)])
    assert (round(a, 6), round(b, 6), round(s, 6)) == (10.0, 5.0, 0.0)

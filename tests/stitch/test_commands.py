"""``hyperzoo stitch fit`` / ``select`` on zoo anchors and the embedded sample."""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file

from hyperzoo.cli import main
from hyperzoo.nets import create_model
from hyperzoo.zoo.store import save_model


def test_fit_and_select(tmp_path, capsys) -> None:
    for name, width in (("x1", 1), ("x2", 2)):
        save_model(
            name,
            create_model("resnet8", width=width, shortcut="B"),
            {"model": "resnet8", "model_kwargs": {"width": width, "shortcut": "B"}},
            tmp_path,
        )
    cfg = tmp_path / "stitch.yaml"
    cfg.write_text(
        f"anchors: [x1, x2]\nzoo: {tmp_path}\ndata: {{root: sample, batch_size: 32}}\nwindow: 0\n"
        f"ls_batches: 1\ntrain: {{max_epochs: 1, limit_train_batches: 2}}\ntest_limit: 64\nout: {tmp_path}/run\n"
    )
    assert main(["stitch", "fit", "--config", str(cfg)]) == 0
    table = json.loads((tmp_path / "run" / "configs.json").read_text())
    rows = table["configs"]
    assert len(rows) > 2 and all(0 <= r["acc"] <= 1 for r in rows) and any(r["pareto"] for r in rows)
    assert (tmp_path / "run" / "pareto.png").is_file()
    capsys.readouterr()
    budget = min(r["flops"] for r in rows if not r["anchor"]) + 1
    assert (
        main(["stitch", "select", "--table", str(tmp_path / "run" / "configs.json"), "--budget-flops", str(budget)])
        == 0
    )
    best = json.loads(capsys.readouterr().out)
    assert best["flops"] <= budget
    assert main(["stitch", "select", "--table", str(tmp_path / "run" / "configs.json"), "--budget-flops", "1"]) == 2


def test_fit_overrides_init_and_epochs(tmp_path) -> None:
    zoo = [create_model("resnet8", shortcut="B") for _ in range(2)]
    for name, model in zip(("a", "b"), zoo):
        save_model(
            name,
            model,
            {"model": "resnet8", "model_kwargs": {"shortcut": "B"}},
            tmp_path,
        )
    cfg = tmp_path / "stitch.yaml"
    cfg.write_text(
        f"anchors: [a, b]\nzoo: {tmp_path}\ndata: {{root: sample, batch_size: 32}}\nwindow: 0\n"
        f"init: ls\nls_batches: 1\ntrain: {{max_epochs: 1, limit_train_batches: 2}}\ntest_limit: 32\n"
    )
    out = tmp_path / "random_untrained"
    assert main(["stitch", "fit", "--config", str(cfg), "--out", str(out), "--init", "random", "--epochs", "0"]) == 0
    meta = json.loads((out / "configs.json").read_text())["meta"]
    assert meta["config"]["init"] == "random" and meta["config"]["train"]["max_epochs"] == 0
    # no training: the anchors keep the zoo's weights; no LS pass: the stitches are not the least-squares ones
    state = load_file(str(out / "snnet.safetensors"))
    for i in range(2):
        anchor = {k.split(".", 2)[2]: v for k, v in state.items() if k.startswith(f"anchors.{i}.")}
        assert anchor and any(all(torch.equal(v, m.state_dict()[k]) for k, v in anchor.items()) for m in zoo)
    ls_out = tmp_path / "ls_untrained"
    assert main(["stitch", "fit", "--config", str(cfg), "--out", str(ls_out), "--epochs", "0"]) == 0
    ls_state = load_file(str(ls_out / "snnet.safetensors"))
    stitches = [k for k in state if k.startswith("stitches.") and k.endswith(".weight")]
    assert stitches and not any(torch.equal(state[k], ls_state[k]) for k in stitches)
    assert main(["stitch", "fit", "--config", str(cfg), "--out", str(out), "--epochs", "-1"]) == 2
    assert main(["stitch", "fit", "--config", str(cfg), "--out", str(out), "--anchor-lr-scale", "-1"]) == 2

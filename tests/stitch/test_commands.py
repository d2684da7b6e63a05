"""``hyperzoo stitch fit`` / ``select`` on zoo anchors and the embedded sample."""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file

from hyperzoo.cli import main
from hyperzoo.nets import create_model
from hyperzoo.zoo.store import save_model


def _config(zoo, anchors: list[str], test_limit: int, out: str | None = None) -> str:
    """A tiny stitch config (LightningCLI) on the embedded sample: two training steps, no window."""
    root = f"default_root_dir: {out}\n  " if out else ""
    return f"""
trainer:
  max_epochs: 1
  limit_train_batches: 2
  accelerator: cpu
  {root}logger: false
  enable_checkpointing: false
  enable_progress_bar: false
  enable_model_summary: false
  limit_val_batches: 0
  callbacks:
    - class_path: hyperzoo.stitch.run.StitchRun
      init_args: {{init: ls, ls_batches: 1, test_limit: {test_limit}}}
model:
  class_path: hyperzoo.lightning.stitch_module.StitchModule
  init_args:
    snnet:
      class_path: hyperzoo.stitch.run.ZooSNNet
      init_args: {{anchors: {anchors}, zoo: {zoo}, window: 0}}
data:
  class_path: hyperzoo.data.CIFAR10DataModule
  init_args: {{root: sample, batch_size: 32}}
"""


def test_fit_and_select(tmp_path, capsys) -> None:
    for name, width in (("x1", 1), ("x2", 2)):
        save_model(
            name,
            create_model("resnet8", width=width, shortcut="B"),
            {"model": "resnet8", "model_kwargs": {"width": width, "shortcut": "B"}},
            tmp_path,
        )
    cfg = tmp_path / "stitch.yaml"
    cfg.write_text(_config(tmp_path, ["x1", "x2"], 64, f"{tmp_path}/run"))
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


def test_fit_overrides_init_and_epochs(tmp_path, capsys) -> None:
    zoo = [create_model("resnet8", shortcut="B") for _ in range(2)]
    for name, model in zip(("a", "b"), zoo):
        save_model(
            name,
            model,
            {"model": "resnet8", "model_kwargs": {"shortcut": "B"}},
            tmp_path,
        )
    cfg = tmp_path / "stitch.yaml"
    cfg.write_text(_config(tmp_path, ["a", "b"], 32))
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
    capsys.readouterr()
    assert main(["stitch", "fit", "--config", str(cfg), "--out", str(out), "--epochs", "-1"]) == 2
    assert "error: --epochs -1.0: must be >= 0 (0 evaluates the initialised stitches)" in capsys.readouterr().err
    assert main(["stitch", "fit", "--config", str(cfg), "--out", str(out), "--anchor-lr-scale", "-1"]) == 2
    assert "error: --anchor-lr-scale -1.0: must be >= 0 (0 freezes the anchors)" in capsys.readouterr().err


def test_the_stitch_configs_are_valid_fits(capsys) -> None:
    from pathlib import Path

    import pytest
    import yaml

    configs = Path(__file__).resolve().parents[2] / "experiments" / "configs"
    for name, anchors in (("stitch_cifar10", 3), ("stitch_cifar10_widths", 2)):
        with pytest.raises(SystemExit):
            main(["fit", "--config", str(configs / f"{name}.yaml"), "--print_config"])
        printed = yaml.safe_load(capsys.readouterr().out)
        snnet = printed["model"]["init_args"]["snnet"]
        assert snnet["class_path"] == "hyperzoo.stitch.run.ZooSNNet" and len(snnet["init_args"]["anchors"]) == anchors
        assert printed["trainer"]["callbacks"][0]["init_args"]["init"] == "ls"

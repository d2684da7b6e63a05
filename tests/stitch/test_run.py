"""The config of a stitch run: ``hyperzoo stitch fit``'s overrides on a stitch config (no anchors loaded)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hyperzoo.errors import ConfigError
from hyperzoo.stitch.run import OUTPUTS, fit_config

CONFIG = Path(__file__).resolve().parents[2] / "experiments" / "configs" / "stitch_cifar10.yaml"


def test_fit_config_sets_the_overrides_and_the_output_folder(tmp_path) -> None:
    out = str(tmp_path / "run")
    cfg, out_dir = fit_config(CONFIG, out, init="random", epochs=0, anchor_lr_scale=0.5, overwrite=True)
    assert out_dir == Path(out) and cfg["trainer"]["default_root_dir"] == out and cfg["trainer"]["max_epochs"] == 0
    assert cfg["model"]["init_args"]["anchor_lr_scale"] == 0.5
    run = cfg["trainer"]["callbacks"][0]["init_args"]
    assert run["init"] == "random" and run["out"] == out and run["overwrite"] is True
    cfg, out_dir = fit_config(CONFIG)  # as written: the outputs go to the config's default_root_dir
    assert out_dir == Path("runs/stitch_cifar10_ls") and cfg["trainer"]["max_epochs"] == 1
    assert "overwrite" not in cfg["trainer"]["callbacks"][0]["init_args"]


def test_fit_config_refuses_bad_values_naming_the_argument(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"^epochs=-1: must be >= 0 \(0 evaluates the initialised stitches\)"):
        fit_config(CONFIG, str(tmp_path), epochs=-1)
    with pytest.raises(ConfigError, match=r"^anchor_lr_scale=-0.5: must be >= 0 \(0 freezes the anchors\)"):
        fit_config(CONFIG, str(tmp_path), anchor_lr_scale=-0.5)
    (tmp_path / OUTPUTS[0]).write_text("{}")
    with pytest.raises(ConfigError, match=r"already exists; pass --overwrite"):
        fit_config(CONFIG, str(tmp_path))
    fit_config(CONFIG, str(tmp_path), overwrite=True)

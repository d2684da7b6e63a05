"""Library errors name Python arguments; the ``hyperzoo`` command prints its flags instead."""

from __future__ import annotations

import argparse

import pytest
import torch

from hyperzoo.cli import main
from hyperzoo.cli_flags import argument_flags, flag_message
from hyperzoo.errors import ConfigError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("-b", "--batch-size", type=int)
    p.add_argument("--skip-unknown", action="store_true")
    p.add_argument("--out", dest="output")
    return p


def test_argument_flags_come_from_the_parser():
    flags = argument_flags(_parser(), allow_unpredicted="--skip-unknown")
    assert flags == {
        "batch_size": "--batch-size",
        "skip_unknown": "--skip-unknown",
        "output": "--out",
        "allow_unpredicted": "--skip-unknown",
    }


def test_flag_message_rewrites_arguments_only():
    flags = argument_flags(_parser(), allow_unpredicted="--skip-unknown")
    assert flag_message("batch_size=0: must be at least 1", flags) == "--batch-size 0: must be at least 1"
    assert flag_message("pass allow_unpredicted=True to leave them", flags) == "pass --skip-unknown to leave them"
    assert (
        flag_message("pass allow_unpredicted=True (or skip_unknown=True) to predict", flags)
        == "pass --skip-unknown to predict"
    )
    # other names, attribute paths and longer names that end in a mapped one stay as they are
    for text in ("eval_batch_size=0", "dm.batch_size=3", "seed=1", "batch_size is 0"):
        assert flag_message(text, flags) == text
    assert flag_message("batch_size=0", {}) == "batch_size=0"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory):
    from hyperzoo.ghn import create_ghn, save_ghn

    torch.manual_seed(0)
    return save_ghn(create_ghn("ghn2", hid=16, max_shape=(16, 16, 3, 3)), tmp_path_factory.mktemp("g") / "t")


def test_predict_library_names_the_argument_and_the_command_the_flag(ckpt, tmp_path, capsys):
    from hyperzoo.ghn import load_ghn
    from hyperzoo.ghn.predict import predict_to_file

    out = tmp_path / "m.safetensors"
    with pytest.raises(ConfigError, match=r"^num_classes=100: the GHN predicts classifiers for 10 classes") as e:
        predict_to_file(load_ghn(ckpt), "resnet20", out, num_classes=100)
    assert "--" not in str(e.value)
    assert main(["predict", "resnet20", "--ghn", str(ckpt), "--out", str(out), "--num-classes", "100"]) == 2
    err = capsys.readouterr().err
    assert "--num-classes 100: the GHN predicts classifiers for 10 classes" in err and "num_classes=" not in err
    assert not out.exists()


def test_device_error_names_the_flag(ckpt, tmp_path, capsys):
    from hyperzoo.ghn.evaluate import resolve_device

    with pytest.raises(ConfigError, match=r"^device='tpu0': give 'auto'"):
        resolve_device("tpu0")
    argv = ["predict", "resnet20", "--ghn", str(ckpt), "--out", str(tmp_path / "m.safetensors")]
    assert main([*argv, "--device", "tpu0"]) == 2
    err = capsys.readouterr().err
    assert "--device 'tpu0': give 'auto'" in err and "device=" not in err


def test_unpredictable_layers_name_the_argument_in_the_library(ckpt, tmp_path, capsys):
    from hyperzoo.ghn import UnpredictableLayerError, load_ghn

    class LayerScale(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.gamma = torch.nn.Parameter(torch.ones(8, 1, 1))
            self.fc = torch.nn.Linear(8, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc((self.gamma * self.conv(x)).mean((2, 3)))

    with pytest.raises(UnpredictableLayerError, match=r"allow_unpredicted=True \(or skip_unknown=True\)") as e:
        load_ghn(ckpt).predict_parameters(LayerScale())
    assert "--skip-unknown" not in str(e.value)


def test_existing_zoo_entry_names_overwrite_in_both_layers(tmp_path, capsys):
    from hyperzoo.nets import create_model
    from hyperzoo.zoo.store import check_new_entry, save_model

    save_model("m", create_model("resnet8"), {"model": "resnet8"}, tmp_path)
    with pytest.raises(ConfigError, match=r"'m' already exists .*; pass overwrite=True to replace it"):
        check_new_entry("m", tmp_path)
    weights = tmp_path / "w.safetensors"
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in create_model("resnet8").state_dict().items()}, str(weights))
    argv = ["zoo", "add", "m", "--model", "resnet8", "--weights", str(weights), "--zoo", str(tmp_path)]
    argv += ["--num-classes", "10"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "pass --overwrite to replace it" in err and "overwrite=" not in err

"""The zoo store: safetensors + JSON round trip, listing, local weight files, errors."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from hyperzoo.errors import ConfigError, DataError, UnknownNameError
from hyperzoo.nets import create_model
from hyperzoo.zoo.store import add_external, list_zoo, load_meta, load_model, save_model, zoo_dir


def test_roundtrip(tmp_path) -> None:
    model = create_model("resnet8", num_classes=5, shortcut="B")
    save_model("m", model, {"model": "resnet8", "model_kwargs": {"shortcut": "B"}, "num_classes": 5}, tmp_path)
    assert list_zoo(tmp_path) == ["m"]
    meta = load_meta("m", tmp_path)
    assert meta["format"] == "hyperzoo-zoo/2" and len(meta["sha256"]) == 64
    back = load_model("m", tmp_path, verify=True)
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(back(x), model(x))
    assert load_model(str(tmp_path / "m.safetensors")).fc.out_features == 5  # by path


def test_errors(tmp_path, monkeypatch) -> None:
    with pytest.raises(UnknownNameError, match="no zoo entry 'nope'"):
        load_meta("nope", tmp_path)
    with pytest.raises(ConfigError, match="plain file names"):
        save_model("../x", create_model("resnet8"), {"model": "resnet8"}, tmp_path)
    save_model("m", create_model("resnet8"), {"model": "resnet8"}, tmp_path)
    (tmp_path / "m.safetensors").write_bytes((tmp_path / "m.safetensors").read_bytes()[:-3] + b"xyz")
    with pytest.raises(DataError, match="SHA-256"):
        load_model("m", tmp_path, verify=True)
    monkeypatch.setenv("HYPERZOO_ZOO", str(tmp_path / "env"))
    assert zoo_dir() == tmp_path / "env"


def test_add_local_torchvision_weights(tmp_path) -> None:
    net = create_model("resnet18", num_classes=10)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "r18.safetensors"))
    add_external("tv-r18", "resnet18", tmp_path / "r18.safetensors", num_classes=10, root=tmp_path / "zoo")
    meta = json.loads((tmp_path / "zoo" / "tv-r18.json").read_text())
    assert meta["source"] == "torchvision"
    back = load_model("tv-r18", tmp_path / "zoo")
    assert torch.equal(back.conv1.weight, net.conv1.weight)
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(DataError, match="do not fit"):
        add_external("bad", "resnet18", tmp_path / "bad.pth", num_classes=10, root=tmp_path / "zoo")

import pytest
import torch

from hyperzoo.errors import DataError
from hyperzoo.smash.model import SMASH, load_smash, save_smash


def test_save_load_roundtrip(tmp_path):
    model = SMASH({"max_ops": 3}, num_classes=5, hypernet={"width": 8, "growth": 4, "depth": 1, "noise": False})
    path = save_smash(model, tmp_path / "smash.safetensors", global_step=3)
    loaded = load_smash(path)
    assert loaded.space == model.space and loaded.config == model.config
    arch = model.space.sample(0)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(loaded(x, arch), model(x, arch))
    assert (tmp_path / "smash.json").read_text().count("hyperzoo-smash/1") == 1


def test_load_missing(tmp_path):
    with pytest.raises(DataError, match="needs"):
        load_smash(tmp_path / "nothing.safetensors")

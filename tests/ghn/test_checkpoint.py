"""hyperzoo's GHN checkpoints (safetensors + JSON), ``from_pretrained``, and what bad files get."""

from __future__ import annotations

import json
import os
import pickle

import pytest
import torch

from hyperzoo.errors import DataError, UnknownNameError
from hyperzoo.ghn import GHN, create_ghn, from_pretrained, ghn_config, list_ghns, load_ghn, read_card, save_ghn
from hyperzoo.nets import create_model

TINY = {"hid": 16, "max_shape": (16, 16, 3, 3)}


@pytest.mark.parametrize("name", ["ghn1", "ghn2", "mlp", "ghn3_t"])
def test_save_load_round_trip_predicts_the_same(tmp_path, name):
    torch.manual_seed(0)
    extra = {"layers": 1, "heads": 2} if name.startswith("ghn3") else {}
    ghn = create_ghn(name, **TINY, **extra).eval()
    path = save_ghn(ghn, tmp_path / name, steps=12, data="CIFAR-10 (JPEG)")
    assert path.suffix == ".safetensors" and path.with_suffix(".json").is_file()
    card = read_card(path)
    assert card["config"] == json.loads(json.dumps(ghn.config)) and card["metadata"]["steps"] == 12
    loaded = load_ghn(path)
    assert not loaded.training and loaded.config == ghn.config
    net = create_model("resnet20")
    with torch.no_grad():
        a, b = ghn.predict_parameters(net), loaded.predict_parameters(net)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the directory, the JSON card and from_pretrained(path) all reach the same file
    assert load_ghn(tmp_path / f"{name}.json").config == ghn.config
    assert from_pretrained(str(path)).config == ghn.config


def test_variants_by_name():
    assert {"ghn1", "ghn2", "mlp", "ghn3_t", "ghn3_s"} <= set(list_ghns())
    assert ghn_config("ghn1")["ve"] is False and ghn_config("ghn2")["ve"] is True
    assert ghn_config("ghn2", num_classes=100)["num_classes"] == 100
    n = sum(p.numel() for p in create_ghn("ghn2").parameters())
    assert n == 1_620_764  # the reference ghn2_cifar10.pt (ghn.md C.4)
    assert sum(p.numel() for p in create_ghn("ghn1").parameters()) == 1_620_668
    assert sum(p.numel() for p in create_ghn("mlp").parameters()) == 1_614_396
    with pytest.raises(UnknownNameError, match="ghn2"):
        create_ghn("ghn_2")


def test_corrupt_and_truncated_files_are_refused(tmp_path):
    path = save_ghn(create_ghn("ghn2", **TINY), tmp_path / "ghn")
    data = path.read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="corrupt or truncated"):
        load_ghn(tmp_path / "trunc.safetensors")
    (tmp_path / "garbage.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(DataError, match="not a readable safetensors"):
        load_ghn(tmp_path / "garbage.safetensors")
    with pytest.raises(DataError, match="not found"):
        load_ghn(tmp_path / "missing.safetensors")


def test_weights_of_another_architecture_are_refused(tmp_path):
    path = save_ghn(create_ghn("ghn2", **TINY), tmp_path / "ghn")
    big = create_ghn("ghn2", hid=32, max_shape=(16, 16, 3, 3))
    from safetensors.torch import save_file

    header = {"config": json.dumps(create_ghn("ghn2", **TINY).config)}
    save_file({k: v.contiguous() for k, v in big.state_dict().items()}, str(tmp_path / "other.safetensors"), header)
    with pytest.raises(DataError, match="another GHN"):
        load_ghn(tmp_path / "other.safetensors")
    assert load_ghn(path).hid == 16


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_pickles_with_code_are_refused(tmp_path):
    evil = tmp_path / "evil.pt"
    with evil.open("wb") as f:
        pickle.dump({"state_dict": {}, "config": {}, "x": _Exploit()}, f)
    with pytest.raises(DataError, match=r"posix\.system|os\.system"):  # a plain pickle: the restricted reader
        load_ghn(evil)
    evil_ckpt = tmp_path / "evil.ckpt"
    evil_ckpt.write_bytes(evil.read_bytes())
    with pytest.raises(DataError, match="weights_only"):
        load_ghn(evil_ckpt)


def test_unknown_pretrained_name():
    with pytest.raises(DataError, match="unknown pretrained GHN"):
        from_pretrained("ghn9-imagenet")


def test_ghn_class_checks_its_configuration():
    from hyperzoo.errors import ConfigError

    with pytest.raises(ConfigError, match="hypernet"):
        GHN(hypernet="lstm")
    with pytest.raises(ConfigError, match="max_shape"):
        GHN(max_shape=(64, 64, 3))


def test_float16_storage_halves_the_file_and_loads_back_as_float32(tmp_path):
    torch.manual_seed(0)
    ghn = create_ghn("ghn2", **TINY).eval()
    full = save_ghn(ghn, tmp_path / "full")
    half = save_ghn(ghn, tmp_path / "half", storage_dtype=torch.float16, note="fp16")
    assert half.stat().st_size < 0.6 * full.stat().st_size
    assert read_card(half)["storage_dtype"] == "float16" and read_card(half)["metadata"] == {"note": "fp16"}
    loaded = load_ghn(half)
    for k, v in ghn.state_dict().items():
        got = loaded.state_dict()[k]
        assert got.dtype == v.dtype
        if v.is_floating_point():
            torch.testing.assert_close(got, v.half().float(), rtol=0, atol=0)


def test_float16_storage_refuses_weights_that_overflow(tmp_path):
    ghn = create_ghn("ghn2", **TINY)
    with torch.no_grad():
        next(ghn.parameters()).view(-1)[0] = 1e6  # above float16's 65504
    with pytest.raises(DataError, match="float16"):
        save_ghn(ghn, tmp_path / "half", storage_dtype=torch.float16)
    assert not (tmp_path / "half.safetensors").exists()


def test_best_shipped_ranks_by_the_cards_resnet50_number(tmp_path):
    from hyperzoo.ghn.checkpoint import PRETRAINED, best_shipped, headline_top1

    def card(top1):
        return {"metadata": {"metrics": {"cifar10_jpeg_test_10000": {"resnet50_adapted_32x32": {"top1": top1}}}}}

    assert headline_top1(card(0.3)) == 0.3 and headline_top1({"metadata": {}}) is None
    best, scores = best_shipped({"a": card(0.2147), "b": card(0.25), "c": {}})
    assert best == "b" and scores == {"a": 0.2147, "b": 0.25, "c": None}
    assert best_shipped({"a": card(0.2), "b": card(0.2)})[0] == "a"  # a tie keeps the listed order
    assert best_shipped({"c": {}})[0] == "c"
    name, shipped = best_shipped()  # the installed cards
    assert name in PRETRAINED and set(shipped) == set(PRETRAINED)
    assert shipped["ghn2-cifar10"] == 0.2147  # the numbers the shipped cards record (experiments/RESULTS.md)
    assert shipped["ghn2-cifar10-resnets"] == 0.2487 and name == "ghn2-cifar10-resnets"

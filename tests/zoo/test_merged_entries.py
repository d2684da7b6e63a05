"""Merged zoo entries load through the zoo alone (width surgery of hyperzoo.nets) as the network the merge made."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import hyperzoo.zoo.store as store
from hyperzoo.errors import DataError
from hyperzoo.merge.run import merge_entries
from hyperzoo.nets import create_model
from hyperzoo.zoo.store import load_meta, load_model, save_model
from tests.merge.conftest import randomize


def _merge(tmp_path, monkeypatch, shortcut: str, width: float, classes_b: list[int] | None) -> nn.Module:
    """Stores entries A and B, merges them into entry ``ab`` of ``tmp_path/merged``; returns the merged network."""
    n = 5 if classes_b else 10
    meta = {"model": "resnet8", "model_kwargs": {"shortcut": shortcut}, "num_classes": n}
    for name, seed, classes in (("a", 1, list(range(n))), ("b", 2, classes_b or list(range(n)))):
        net = randomize(create_model("resnet8", num_classes=n, shortcut=shortcut), seed)
        save_model(name, net, {**meta, "classes": classes}, tmp_path)
    made: list[nn.Module] = []

    def keep(name, model, *args, **kwargs):
        made.append(copy.deepcopy(model))
        return save_entry(name, model, *args, **kwargs)

    save_entry = store.save_model
    monkeypatch.setattr(store, "save_model", keep)  # merge_entries imports it when it runs
    merge_entries(
        "a", "b", "pleas", width, "sample", batches=2, batch_size=32, test_limit=32, zoo=str(tmp_path),
        out=str(tmp_path / "merged"), name="ab",
    )  # fmt: skip
    monkeypatch.undo()
    return made[0].eval()


@pytest.mark.parametrize(
    ("shortcut", "width", "classes_b"),
    [("B", 1.5, None), ("A", 2.0, [5, 6, 7, 8, 9])],  # zero-padding shortcuts; heads side by side
)
def test_a_merged_entry_loads_as_the_merged_network(tmp_path, monkeypatch, shortcut, width, classes_b) -> None:
    merged = _merge(tmp_path, monkeypatch, shortcut, width, classes_b)
    assert merged.conv1.out_channels > 16  # widened
    loaded = load_model("ab", tmp_path / "merged")
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(loaded(x), merged(x))
    assert {k: tuple(v.shape) for k, v in loaded.state_dict().items()} == {
        k: tuple(v.shape) for k, v in merged.state_dict().items()
    }
    for got, want in zip(loaded.modules(), merged.modules(), strict=True):  # a real network of the new widths
        for attr in ("in_channels", "out_channels", "groups", "num_features", "in_features", "out_features"):
            assert getattr(got, attr, None) == getattr(want, attr, None), (type(got).__name__, attr)


def test_a_wrong_shaped_merged_entry_is_a_data_error(tmp_path, monkeypatch) -> None:
    merged = _merge(tmp_path, monkeypatch, "B", 1.5, None)
    meta = load_meta("ab", tmp_path / "merged")
    bad = copy.deepcopy(merged)
    bad.layer1[0].bn1.weight = nn.Parameter(torch.ones(3))
    save_model("ab", bad, meta, tmp_path / "merged", overwrite=True)
    with pytest.raises(DataError, match=r"zoo entry 'ab' .*tensors layer1.0.bn1.weight \(3,\), layer1.0.bn1.bias"):
        load_model("ab", tmp_path / "merged")
    width = merged.layer1[0].bn1.num_features
    unchained = copy.deepcopy(merged)
    unchained.layer1[0].bn1 = nn.BatchNorm2d(width - 2)  # consistent in itself, but conv1 gives `width` channels
    save_model("ab", unchained, meta, tmp_path / "merged", overwrite=True)
    with pytest.raises(DataError, match=r"zoo entry 'ab' .*module 'layer1.0.bn1' \(BatchNorm2d\) with tensors"):
        load_model("ab", tmp_path / "merged")

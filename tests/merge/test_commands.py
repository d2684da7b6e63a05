"""``hyperzoo merge`` end to end on zoo entries and the embedded sample."""

from __future__ import annotations

import json

import pytest
import torch

from hyperzoo.cli import main
from hyperzoo.merge.run import accuracies, load_merged
from hyperzoo.nets import create_model
from hyperzoo.zoo.store import save_model
from tests.merge.conftest import randomize


def _zoo(tmp_path, classes_b=None):
    meta = {"model": "resnet8", "model_kwargs": {"shortcut": "B"}, "num_classes": 5 if classes_b else 10}
    save_model(
        "a",
        randomize(create_model("resnet8", num_classes=meta["num_classes"], shortcut="B"), 1),
        {**meta, "classes": [0, 1, 2, 3, 4] if classes_b else list(range(10))},
        tmp_path,
    )
    save_model(
        "b",
        randomize(create_model("resnet8", num_classes=meta["num_classes"], shortcut="B"), 2),
        {**meta, "classes": classes_b or list(range(10))},
        tmp_path,
    )


def test_merge_command(tmp_path, capsys) -> None:
    _zoo(tmp_path)
    rc = main(
        [
            "merge",
            "a",
            "b",
            "--method",
            "pleas",
            "--width",
            "1.5",
            "--data-root",
            "sample",
            "--zoo",
            str(tmp_path),
            "--out",
            str(tmp_path / "merged"),
            "--batches",
            "2",
            "--batch-size",
            "32",
            "--test-limit",
            "64",
            "--name",
            "ab",
        ]
    )
    assert rc == 0
    info = json.loads(capsys.readouterr().out)
    assert 0 <= info["acc"] <= 1 and info["macs_ratio"] > 1.5
    merged = load_merged("ab", str(tmp_path / "merged"))
    assert merged(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_merge_command_errors(tmp_path, capsys) -> None:
    _zoo(tmp_path)
    save_model("c", create_model("resnet20"), {"model": "resnet20"}, tmp_path)
    assert main(["merge", "a", "c", "--zoo", str(tmp_path), "--data-root", "sample"]) == 2
    assert "same architecture" in capsys.readouterr().err
    assert (
        main(
            [
                "merge",
                "a",
                "b",
                "--width",
                "3",
                "--zoo",
                str(tmp_path),
                "--data-root",
                "sample",
                "--batches",
                "1",
                "--batch-size",
                "8",
            ]
        )
        == 2
    )
    assert "[1, 2]" in capsys.readouterr().err


def test_accuracies_for_two_label_spaces() -> None:
    logits = torch.tensor([[5.0, 0, 0, 0], [0, 0, 0, 5.0], [0, 5.0, 0, 0]])
    labels = torch.tensor([3, 9, 9])  # A knows classes 3, 4; B knows 8, 9
    acc = accuracies(logits, labels, [3, 4], [8, 9])
    assert acc["joint"] == pytest.approx(2 / 3)  # the third image is claimed by A's head
    assert acc["half_a"] == 1.0 and acc["half_b"] == 0.5

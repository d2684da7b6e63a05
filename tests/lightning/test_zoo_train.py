"""Training zoo entries with ``hyperzoo fit`` (one LightningCLI run per entry) on the embedded CIFAR-10 sample."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hyperzoo.data import ClassSubsetCIFAR10DataModule
from hyperzoo.errors import ConfigError
from hyperzoo.lightning.config_overrides import fit_with
from hyperzoo.lightning.zoo_train import train_entry, train_zoo
from hyperzoo.zoo.store import load_meta, load_model
from hyperzoo.zoo.train import ZooEntryWriter, entry_config
from tests.zoo.test_train import CONFIG


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "zoo.yaml"
    path.write_text(CONFIG)
    return path


def _plain_trainer_run() -> dict[str, torch.Tensor]:
    """Entry ``half`` trained by hand (seed, data module, classifier, Trainer): the recipe before LightningCLI."""
    import lightning.pytorch as pl

    from hyperzoo.lightning.classifier import ImageClassifier

    pl.seed_everything(1, workers=True)
    dm = ClassSubsetCIFAR10DataModule(classes=[5, 6, 7, 8, 9], root="sample", batch_size=64, seed=0, limit=300)
    from functools import partial

    from hyperzoo.lightning.schedule import WarmupCosineLR

    module = ImageClassifier(
        "resnet8",
        num_classes=5,
        model_kwargs={"shortcut": "B"},
        optimizer=partial(torch.optim.SGD, lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4),
        lr_scheduler=partial(WarmupCosineLR, warmup_epochs=0.0),
    )
    trainer = pl.Trainer(
        max_epochs=1, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
    )  # fmt: skip
    trainer.fit(module, datamodule=dm)
    return {k: v.contiguous() for k, v in module.net.state_dict().items()}


def test_train_zoo_stores_the_same_weights_as_a_plain_run_and_skips_stored_entries(config, tmp_path, capsys) -> None:
    zoo = tmp_path / "zoo"
    assert train_zoo(config, root=zoo, only=["half"]) == [zoo / "half.safetensors"]
    meta = load_meta("half", zoo)
    assert meta["classes"] == [5, 6, 7, 8, 9] and meta["num_classes"] == 5 and 0 <= meta["test_acc"] <= 1
    assert meta["seed"] == 1 and meta["recipe"]["epochs"] == 1 and meta["recipe"]["optimizer"] == "sgd-nesterov"
    assert meta["data"]["train_images"] < 300
    assert load_model("half", zoo).fc.out_features == 5
    assert not (zoo / ".partial" / "half").exists()
    stored = load_file(str(zoo / "half.safetensors"))
    reference = _plain_trainer_run()
    assert stored.keys() == reference.keys()
    assert all(torch.equal(stored[k], reference[k]) for k in stored)  # bit for bit, on CPU
    capsys.readouterr()
    assert train_zoo(config, root=zoo, only=["half"]) == []
    assert "already trained" in capsys.readouterr().out


def test_bad_configs_are_refused(config, tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(CONFIG.replace("data.init_args.limit: 128", "model.init_args.epoch: 3"))
    with pytest.raises(ConfigError, match=r"epoch"):  # LightningCLI checks every key
        train_entry(bad, "e", tmp_path / "zoo")
    bad.write_text("trainer: {max_epochs: 1}\n")
    with pytest.raises(ConfigError, match=r"no ZooEntryWriter among trainer.callbacks"):
        train_zoo(bad, tmp_path / "zoo")


def test_an_entry_killed_mid_training_resumes_to_the_same_weights(config, tmp_path, capsys, monkeypatch) -> None:
    epoch_start = ZooEntryWriter.on_train_epoch_start

    def kill(self, trainer, module) -> None:
        if trainer.current_epoch == 1:
            raise RuntimeError("killed")
        epoch_start(self, trainer, module)

    zoo = tmp_path / "zoo"
    with monkeypatch.context() as m:
        m.setattr(ZooEntryWriter, "on_train_epoch_start", kill)
        with pytest.raises(RuntimeError, match="killed"):
            train_zoo(config, zoo, only=["e"])
    assert (zoo / ".partial" / "e" / "last.ckpt").is_file() and not (zoo / "e.json").exists()
    capsys.readouterr()
    train_zoo(config, zoo, only=["e"])
    out = capsys.readouterr().out
    assert "resuming e" in out and "epoch 2/2" in out and "epoch 1/2" not in out  # epoch 0 is not trained again
    assert load_meta("e", zoo)["recipe"]["epochs"] == 2
    assert not (zoo / ".partial" / "e").exists()
    resumed = load_file(str(zoo / "e.safetensors"))
    train_zoo(config, tmp_path / "whole", only=["e"])
    uninterrupted = load_file(str(tmp_path / "whole" / "e.safetensors"))
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)


def test_every_entry_of_the_cifar10_zoo_config_is_a_valid_fit(capsys) -> None:
    """Each entry's overrides are keys LightningCLI accepts, and they set what the entry's name says."""
    import yaml

    config = Path(__file__).resolve().parents[2] / "experiments" / "configs" / "zoo_cifar10.yaml"
    entries = yaml.safe_load(config.read_text())["trainer"]["callbacks"][1]["init_args"]["entries"]
    assert len(entries) == 8
    printed = {}
    for name in entries:
        with pytest.raises(SystemExit) as done:
            fit_with(entry_config(config, name, "zoo"), ["--print_config"])
        assert done.value.code == 0
        printed[name] = yaml.safe_load(capsys.readouterr().out)
    model = {n: p["model"]["init_args"] for n, p in printed.items()}
    assert (
        model["r20x2-s1"]["model_kwargs"] == {"shortcut": "B", "width": 2} and model["r56x1-s0"]["model"] == "resnet56"
    )
    assert printed["r20x1-c5to9"]["data"]["init_args"]["classes"] == [5, 6, 7, 8, 9]
    assert [p["seed_everything"] for p in printed.values()] == [0, 1, 0, 1, 2, 3, 0, 0]
    assert printed["r32x1-s0"]["trainer"]["default_root_dir"] == str(Path("zoo") / ".partial" / "r32x1-s0")

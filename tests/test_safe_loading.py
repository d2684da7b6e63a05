"""Every file hyperzoo reads that could hold a pickle is read without running code from it.

Each test crafts a file in the format a loader expects whose pickle would run a command (``os.system`` or ``exec``
through ``__reduce__``) that creates a marker file, hands it to the loader, and checks that the loader refuses it
with an error naming the problem and that the marker was never created.

The audit (``grep -rn "torch.load\\|pickle\\|joblib" hyperzoo/``), loader by loader, and its test here:

- reference ppuda ``.pt`` (``load_reference_checkpoint``, ``from_pretrained(path)``, ``--ghn``):
  ``torch.load(weights_only=True)``; ``test_reference_pt``.
- published ppuda names (``from_pretrained("ghn2-cifar10-ppuda")``): git blob id check, then the same;
  ``test_published_ppuda_name``.
- Lightning ``.ckpt`` GHNs (``load_ghn``): ``torch.load(weights_only=True)``; ``test_lightning_ckpt_ghn``.
- Lightning resume (``hyperzoo fit --ckpt_path``): LightningCLI's own ``weights_only=True`` read, then the Trainer's,
  with ``weights_only=True`` set by ``HyperzooCLI``; ``test_lightning_cli_resume``.
- zoo resume (``<zoo>/.partial/<name>/last.ckpt``): ``trainer.fit(..., weights_only=True)``; ``test_zoo_resume``.
- ``.pth`` state dicts (torchvision ``weights_path``, ``hyperzoo zoo add``): ``torch.load(weights_only=True)``;
  ``test_pth_state_dict``.
- torchvision's pickled CIFAR batches (``cifar10``/``cifar100`` roots): torchvision checks the MD5 of the official
  files before unpickling; ``test_cifar_pickles``.
- hyperzoo's own GHNs, zoo entries, merge/stitch/SMASH outputs: safetensors + JSON, no pickle to craft.
- GHN-3 joblib files (``ghn3-*``): the restricted unpickler of ``hyperzoo.ghn.safe_pickle`` (its own tests).
"""

from __future__ import annotations

import dataclasses
import os
import pickle
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from hyperzoo.cli import main
from hyperzoo.errors import DataError


class _System:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Exec:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


@pytest.fixture(params=[_System, _Exec], ids=["os.system", "exec"])
def payload(request, tmp_path, monkeypatch):
    """(exploit object, marker path); the marker must never exist.

    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` turns torch's default back to full unpickling wherever a caller does not
    pass ``weights_only=True`` itself, so these tests fail for any loader that relies on the default.
    """
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker = tmp_path / "PWNED"
    yield request.param(marker), marker
    assert not marker.exists(), "the crafted pickle ran code"


def _check_exploit_works(obj: object, marker: Path) -> None:
    """The crafted object really runs its command when unpickled without restrictions (so the tests prove something)."""
    pickle.loads(pickle.dumps(obj))
    assert marker.exists()
    marker.unlink()


def _refusal(message: str) -> bool:
    return "weights_only" in message and ("system" in message or "exec" in message)


def test_the_payloads_are_live(tmp_path):
    for cls in (_System, _Exec):
        _check_exploit_works(cls(tmp_path / "m"), tmp_path / "m")


def test_reference_pt(tmp_path, payload, capsys):
    from hyperzoo.ghn import from_pretrained, load_reference_checkpoint

    evil, _ = payload
    path = tmp_path / "ghn2_cifar10.pt"
    torch.save({"state_dict": {}, "config": {"max_shape": (64, 64, 11, 11), "num_classes": 10}, "x": evil}, path)
    for load in (load_reference_checkpoint, from_pretrained):
        with pytest.raises(DataError) as info:
            load(path)
        assert _refusal(str(info.value)) and str(path) in str(info.value)
    assert main(["predict", "resnet20", "--ghn", str(path), "--out", str(tmp_path / "o.safetensors")]) == 2
    assert "weights_only" in capsys.readouterr().err and not (tmp_path / "o.safetensors").exists()


def test_published_ppuda_name(tmp_path, payload, monkeypatch):
    """Even a file that passes the blob-id check (a compromised pin) goes through weights_only loading."""
    from hyperzoo.ghn.published import PUBLISHED, git_blob_sha1, load_published
    from hyperzoo.registry import RegistryEntry

    evil, _ = payload
    cache = tmp_path / "cache"
    dest = cache / "ghns" / "ppuda-4673a42" / "ghn2_cifar10.pt"
    dest.parent.mkdir(parents=True)
    torch.save({"state_dict": {}, "config": {}, "x": evil}, dest)
    entry = PUBLISHED.entry("ghn2-cifar10-ppuda")
    info = dataclasses.replace(entry.meta["info"], blob_sha1=git_blob_sha1(dest))
    monkeypatch.setitem(
        PUBLISHED._entries, entry.name, RegistryEntry(entry.name, entry.fn, entry.family, {"info": info})
    )
    with pytest.raises(DataError) as exc:
        load_published("ghn2-cifar10-ppuda", cache_dir=cache)
    assert _refusal(str(exc.value))


def test_lightning_ckpt_ghn(tmp_path, payload):
    from hyperzoo.ghn import create_ghn, load_ghn

    evil, _ = payload
    ghn = create_ghn("ghn2", hid=8, max_shape=(8, 8, 3, 3))
    path = tmp_path / "last.ckpt"
    state = {f"ghn.{k}": v for k, v in ghn.state_dict().items()}
    torch.save({"state_dict": state, "ghn_config": ghn.config, "epoch": 1, "callbacks": {"x": evil}}, path)
    with pytest.raises(DataError) as info:
        load_ghn(path)
    assert _refusal(str(info.value))


def test_pth_state_dict(tmp_path, payload):
    from hyperzoo.nets import load_state_dict_file

    evil, _ = payload
    path = tmp_path / "resnet18.pth"
    torch.save({"conv1.weight": torch.zeros(1), "evil": evil}, path)
    with pytest.raises(DataError) as info:
        load_state_dict_file(path)
    assert _refusal(str(info.value)) and str(path) in str(info.value)


def _evil_lightning_checkpoint(path: Path, evil: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 0, "global_step": 1, "state_dict": {}, "loops": {"x": evil}}, path)
    return path


def test_zoo_resume(tmp_path, payload):
    from hyperzoo.lightning.zoo_train import train_entry

    evil, _ = payload
    zoo = tmp_path / "zoo"
    last = _evil_lightning_checkpoint(zoo / ".partial" / "r20x1-s0" / "last.ckpt", evil)
    config = Path(__file__).resolve().parents[1] / "experiments" / "configs" / "zoo_cifar10.yaml"
    with pytest.raises(DataError) as info:
        train_entry(config, "r20x1-s0", zoo, {"root": "sample", "limit": 64}, ["--trainer.accelerator", "cpu"])
    assert str(last) in str(info.value) and _refusal(str(info.value))


@pytest.mark.filterwarnings("ignore:LightningCLI's args parameter")
def test_lightning_cli_resume(tmp_path, payload, capsys):
    evil, _ = payload
    ckpt = _evil_lightning_checkpoint(tmp_path / "evil.ckpt", evil)
    config = str(Path(__file__).resolve().parents[1] / "experiments" / "configs" / "resnet20_cifar10.yaml")
    tiny = ["--model.init_args.model", "resnet8", "--data.root", "sample", "--trainer.max_epochs", "1",
            "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "1",
            "--trainer.enable_model_summary", "false"]  # fmt: skip
    with pytest.raises(pickle.UnpicklingError, match=r"(?s)Weights only load failed.*(system|exec)"):
        main(["fit", "--config", config, *tiny, "--trainer.default_root_dir", str(tmp_path / "run"),
              "--ckpt_path", str(ckpt)])  # fmt: skip


def test_cifar_pickles(tmp_path, payload):
    from hyperzoo.data.cache import _cifar_arrays

    evil, _ = payload
    batches = tmp_path / "cifar-10-batches-py"
    batches.mkdir()
    for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
                 "batches.meta"]:  # fmt: skip
        (batches / name).write_bytes(pickle.dumps({"data": evil, "labels": [0], "label_names": ["a"]}))
    source = SimpleNamespace(kind="cifar10", root=tmp_path, description=f"CIFAR-10 at {tmp_path}")
    with pytest.raises(DataError, match="corrupted"):
        _cifar_arrays(source, "train")  # type: ignore[arg-type]

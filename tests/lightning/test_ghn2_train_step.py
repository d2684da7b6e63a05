"""One GHN-2 training step through :class:`GHNModule` equals the reference's, in float64 (``shared/conformance``).

``ghn2_train_step_seed0.json`` records one optimizer step of the reference GHN-2 (ppuda ``train_ghn.py`` with its
``Trainer.update``): four DeepNets-1M training architectures read from the published-format files, 16 fixed
images, the mean cross-entropy over the networks, backward, joint gradient-norm clipping at 5 and one Adam step
(lr 1e-3, L2 weight decay 1e-5). Here the same step runs through the public training path: a Lightning
``Trainer`` (``precision="64-true"``, ``gradient_clip_val=5``) fits :class:`GHNModule` for one step, with its own
``training_step``, clipping and ``configure_optimizers``. The protocol (``TRAIN_STEP.md``) fixes the widths
(``C = 32``, ``fc_dim = 256``: ``width_rule="uniform"`` without ``widths`` keeps the stored ones) and disables the
classifier dropout; both are set here, nothing else is changed.

Tolerance: 1e-4 relative (norms to the golden norm, sums to the golden sum of absolute values, sampled values to
the larger of their magnitude and the tensor's RMS), in float64, where the reference is reproducible to ~1e-7.
"""

from __future__ import annotations

import functools
import json
import math
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from torch import nn

import hyperzoo.lightning.ghn_module as ghn_module
from hyperzoo.ghn import load_reference_checkpoint
from hyperzoo.ghn.checkpoint import map_reference_state_dict
from hyperzoo.graphs.deepnets1m_io import DeepNets1MReader
from hyperzoo.lightning import GHNModule
from tests.paths import CONFORMANCE

warnings.filterwarnings("ignore", ".*does not have many workers.*")

GOLDEN = CONFORMANCE / "ghn2_train_step_seed0.json"
CHECKPOINT = CONFORMANCE / "ghn2_cifar10_seed0.pt"
TRAIN_FILE = CONFORMANCE / "deepnets1m" / "deepnets1m_train.hdf5"
RTOL = 1e-4

pytestmark = pytest.mark.conformance


@lru_cache(maxsize=1)
def golden() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text())


def fingerprint_errors(t: torch.Tensor, fp: dict[str, Any]) -> float:
    """Largest relative error of ``t`` against a fingerprint (``TRAIN_STEP.md``, "What conformance means")."""
    v = t.detach().double().flatten()
    assert list(t.shape) == fp["shape"]
    norm = fp["norm"]
    rms = norm / math.sqrt(max(v.numel(), 1))
    tiny = 1e-300
    errs = [abs(v.norm().item() - norm) / max(norm, tiny), abs(v.sum().item() - fp["sum"]) / max(fp["abs_sum"], tiny)]
    errs += [abs(a - b) / max(abs(b), rms, tiny) for a, b in zip(v[fp["idx"]].tolist(), fp["vals"])]
    return max(errs)


def ours_by_reference_name(named: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``{reference GHN parameter name: tensor}`` from hyperzoo's names (the checkpoint key mapping)."""
    mapping = {ref: next(iter(map_reference_state_dict({ref: torch.zeros(1)}))) for ref in golden()["param_names"]}
    return {ref: named[ours] for ref, ours in mapping.items()}


class _Step(pl.Callback):
    """Records the loss, the gradients before and after clipping and the parameters before and after the step."""

    def __init__(self) -> None:
        self.record: dict[str, Any] = {}

    def on_train_batch_start(self, trainer: pl.Trainer, module: pl.LightningModule, batch: Any, idx: int) -> None:
        self.record["before"] = {k: p.detach().clone() for k, p in module.ghn.named_parameters()}

    def on_before_optimizer_step(self, trainer: pl.Trainer, module: pl.LightningModule, optimizer: Any) -> None:
        # Lightning clips after this hook: these are the raw gradients
        self.record["grads"] = {k: p.grad.detach().clone() for k, p in module.ghn.named_parameters()}

    def on_train_batch_end(
        self, trainer: pl.Trainer, module: pl.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        self.record["loss"] = float(outputs["loss"])
        self.record["clipped"] = {k: p.grad.detach().clone() for k, p in module.ghn.named_parameters()}
        self.record["after"] = {k: p.detach().clone() for k, p in module.ghn.named_parameters()}


class _OneBatch(pl.LightningDataModule):
    """The protocol's single batch; graphs stay Python objects (as :class:`GraphImageDataModule` hands them over)."""

    def __init__(self, batch: tuple[torch.Tensor, torch.Tensor, list[Any]]) -> None:
        super().__init__()
        self.batch = batch

    def train_dataloader(self) -> Any:
        return torch.utils.data.DataLoader([self.batch], batch_size=None, collate_fn=lambda b: b)

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        images, labels, graphs = batch
        return images.to(device), labels.to(device), graphs


def _protocol_batch() -> tuple[torch.Tensor, torch.Tensor, list[Any]]:
    protocol = golden()["protocol"]
    reader = DeepNets1MReader(TRAIN_FILE, split=protocol["split"], s_max=protocol["virtual_edges"])
    graphs = [reader[a["index"]] for a in protocol["archs"]]
    assert [g.num_nodes for g in graphs] == [a["num_nodes"] for a in protocol["archs"]]
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(0)
    x = torch.randn(16, 3, 32, 32)
    y = torch.randint(0, 10, (16,))
    torch.random.set_rng_state(gen_state)
    return x.double(), y, graphs  # drawn in float32, then converted (the float64 protocol)


def _run_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, precision: str) -> tuple[GHNModule, dict[str, Any]]:
    """One step of the protocol through ``Trainer.fit(GHNModule)``; returns the module and the recorded values."""
    protocol = golden()["protocol"]
    assert protocol["C"] == 32 and protocol["fc_dim"] == 256

    build = ghn_module.build_target

    def without_dropout(*args: Any, **kwargs: Any) -> nn.Module:
        net = build(*args, **kwargs)
        for m in net.modules():  # the protocol disables the classifier dropout (p = 0.5) for determinism
            if isinstance(m, nn.Dropout):
                m.eval()
        return net

    monkeypatch.setattr(ghn_module, "build_target", without_dropout)
    opt = protocol["optimizer"]
    module = GHNModule(
        ghn="ghn2",
        num_classes=10,
        optimizer=functools.partial(
            torch.optim.Adam, lr=opt["lr"], betas=(opt["betas"][0], 0.999), weight_decay=opt["weight_decay"]
        ),
        width_rule="uniform",
        widths=None,  # the protocol's fixed widths: the stored C (32) and fc_dim (256)
    )
    module.ghn.load_state_dict(load_reference_checkpoint(CHECKPOINT).state_dict())
    record = _Step()
    trainer = pl.Trainer(
        accelerator="cpu",
        precision=precision,  # type: ignore[arg-type]
        max_steps=1,
        gradient_clip_val=protocol["grad_clip"]["max_norm"],
        gradient_clip_algorithm="norm",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        callbacks=[record],
        default_root_dir=str(tmp_path),
    )
    x, y, graphs = _protocol_batch()
    trainer.fit(module, datamodule=_OneBatch((x if precision == "64-true" else x.float(), y, graphs)))
    return module, record.record


def test_one_training_step_matches_reference_in_float64(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ref = golden()
    f64 = ref["float64"]
    module, rec = _run_step(tmp_path, monkeypatch, "64-true")

    assert next(module.ghn.parameters()).dtype == torch.float64
    assert abs(rec["loss"] - f64["loss"]) <= RTOL * abs(f64["loss"])
    for key, expected in (("before", "params_before"), ("grads", "grads"), ("clipped", "grads_clipped")):
        ours = ours_by_reference_name(rec[key])
        errors = {name: fingerprint_errors(ours[name], fp) for name, fp in f64[expected].items()}
        assert set(errors) == set(ref["param_names"])
        worst = max(errors, key=errors.__getitem__)
        assert errors[worst] <= RTOL, f"{expected}: {worst} differs by {errors[worst]:.2e}"
    total = math.sqrt(sum(float(g.double().pow(2).sum()) for g in rec["grads"].values()))
    assert abs(total - f64["grad_total_norm"]) <= RTOL * f64["grad_total_norm"]
    clipped = math.sqrt(sum(float(g.double().pow(2).sum()) for g in rec["clipped"].values()))
    assert abs(clipped / total - f64["clip_coef"]) <= RTOL * f64["clip_coef"]
    after = ours_by_reference_name(rec["after"])
    before = ours_by_reference_name(rec["before"])
    for name in ref["param_names"]:
        assert fingerprint_errors(after[name], f64["params_after"][name]) <= RTOL, name
        # the update is ~lr per element; its fingerprint checks the step's sign and the L2 (not decoupled) decay
        assert fingerprint_errors(after[name] - before[name], f64["update"][name]) <= RTOL, name


@pytest.mark.parametrize("variant", ["ghn2", "ghn1", "mlp", "ghn3_t"])
def test_ghns_run_with_float64_as_the_default_dtype(variant: str) -> None:
    """Built and run under ``torch.set_default_dtype(torch.float64)``: float64 predictions, gradients reach the GHN."""
    from hyperzoo.ghn import create_ghn
    from hyperzoo.graphs import graph_from_module
    from hyperzoo.nets import create_model

    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        kwargs = {"layers": 1, "heads": 2} if variant == "ghn3_t" else {}
        ghn = create_ghn(variant, hid=16, max_shape=(16, 16, 3, 3), **kwargs).train()
        model = create_model("resnet20")
        pred = ghn.predict_parameters(graph_from_module(model), model)
        assert {t.dtype for t in pred.values()} == {torch.float64}
        sum(t.sum() for t in pred.values()).backward()
        assert all(p.grad is None or p.grad.dtype == torch.float64 for p in ghn.parameters())
        assert any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in ghn.parameters())
    finally:
        torch.set_default_dtype(old)


def test_training_step_loss_matches_reference_in_float32(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In float32 the loss agrees too (its gradients do not: the reference's own float32 runs differ by ~7e-3)."""
    f32 = golden()["float32"]
    module, rec = _run_step(tmp_path, monkeypatch, "32-true")
    assert next(module.ghn.parameters()).dtype == torch.float32
    assert abs(rec["loss"] - f32["loss"]) <= RTOL * abs(f32["loss"])

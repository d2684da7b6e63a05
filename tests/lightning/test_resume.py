"""Kill-and-resume of a real ``hyperzoo fit`` process: the rerun continues at the last step, ends as if never killed."""

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hyperzoo.cli import main

REPO = Path(__file__).resolve().parents[2]

# 2 epochs of 5 steps (batch 16 of the embedded CIFAR-10 sample), last.ckpt every 3 steps
CONFIG = """
seed_everything: 0
ckpt_path: last
trainer:
  max_epochs: 2
  accelerator: cpu
  devices: 1
  limit_train_batches: 5
  limit_val_batches: 1
  log_every_n_steps: 1
  num_sanity_val_steps: 1
  enable_model_summary: false
  enable_progress_bar: false
  default_root_dir: run
  logger:
    - class_path: hyperzoo.lightning.loggers.ResumableCSVLogger
      init_args: {save_dir: "{root}", name: "", version: csv}
  callbacks:
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args: {dirpath: "{root}/checkpoints", filename: "best", monitor: val/acc, mode: max, save_top_k: 1,
                  enable_version_counter: false}
    - class_path: hyperzoo.lightning.resume.ResumableCheckpoint
      init_args: {dirpath: "{root}/checkpoints", every_n_train_steps: 3}
    - class_path: resume_probe.Probe
      init_args: {at_step: AT_STEP, signal_name: SIGNAL}
model:
  class_path: hyperzoo.lightning.ImageClassifier
  init_args:
    model: resnet8
    model_kwargs: {width: 1}
    optimizer: {class_path: torch.optim.SGD, init_args: {lr: 0.05, momentum: 0.9, weight_decay: 1.0e-4}}
    lr_scheduler: {class_path: hyperzoo.lightning.schedule.WarmupCosineLR, init_args: {warmup_epochs: 0.5}}
data:
  class_path: hyperzoo.data.CIFAR10DataModule
  init_args: {root: sample, batch_size: 16}
"""

# A callback that records every step it starts (pid, global step) and, once per run folder, sends itself a signal
# after the step `at_step` (the run folder's `killed` file marks that it did).
PROBE = """
import os, signal
from pathlib import Path
from lightning.pytorch.callbacks import Callback

class Probe(Callback):
    def __init__(self, at_step: int = -1, signal_name: str = "SIGKILL"):
        self.at_step, self.signal_name = at_step, signal_name

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        with open(Path(trainer.default_root_dir) / "steps.txt", "a") as f:
            f.write(f"{os.getpid()} {trainer.global_step}\\n")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        marker = Path(trainer.default_root_dir) / "killed"
        if trainer.global_step == self.at_step and not marker.exists():
            marker.touch()
            os.kill(os.getpid(), getattr(signal, self.signal_name))
"""


def _setup(folder: Path, at_step: int, signal_name: str = "SIGKILL") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "resume_probe.py").write_text(PROBE)
    config = folder / "tiny.yaml"
    config.write_text(CONFIG.replace("AT_STEP", str(at_step)).replace("SIGNAL", signal_name))
    return config


def _fit(folder: Path, config: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(REPO), str(folder)])}
    cmd = [sys.executable, "-m", "hyperzoo.cli", "fit", "--config", str(config)]
    return subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]


def _rows(run: Path) -> list[dict[str, str]]:
    with (run / "csv" / "metrics.csv").open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run (in this process: same seeds, same single thread as the subprocesses)."""
    folder = tmp_path_factory.mktemp("reference")
    assert _in_process(folder, _setup(folder, at_step=-1)) == 0
    return folder / "run"


def _assert_same_result(run: Path, reference: Path) -> None:
    mine, ref = _weights(run), _weights(reference)
    assert mine.keys() == ref.keys()
    for key in ref:
        torch.testing.assert_close(mine[key], ref[key], rtol=1e-5, atol=1e-6, msg=f"{key} differs")
    rows, ref_rows = _rows(run), _rows(reference)
    assert [(r["epoch"], r["step"]) for r in rows] == [(r["epoch"], r["step"]) for r in ref_rows]  # none repeated
    for row, ref_row in zip(rows, ref_rows):
        for key, value in ref_row.items():
            if value:
                assert float(row[key]) == pytest.approx(float(value), rel=1e-4, abs=1e-6), (key, row, ref_row)
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["best.ckpt", "last.ckpt"]  # no ...-v1.ckpt, no temporary file left


def _steps(run: Path) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for line in (run / "steps.txt").read_text().split("\n"):
        if line:
            pid, step = map(int, line.split())
            out.setdefault(pid, []).append(step)
    return out


def test_kill_mid_epoch_then_same_command_resumes_exactly(tmp_path, reference):
    config = _setup(tmp_path, at_step=7)  # epoch 1 (steps 5-9); last.ckpt was written at step 6
    killed = _fit(tmp_path, config)
    assert killed.returncode == -signal.SIGKILL
    run = tmp_path / "run"
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 6

    rerun = _fit(tmp_path, config)  # the same command
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    first, second = _steps(run).values()
    assert first == list(range(7)) and second == [6, 7, 8, 9]  # continued at the last saved step, not at epoch 0
    _assert_same_result(run, reference)
    assert "no last checkpoint" not in killed.stderr + rerun.stderr
    assert "Tip:" not in killed.stderr + rerun.stderr and "LeafSpec" not in killed.stderr + rerun.stderr


def _in_process(folder: Path, config: Path) -> int:
    sys.path.insert(0, str(folder))
    old = Path.cwd()
    try:
        os.chdir(folder)
        return main(["fit", "--config", str(config)])
    finally:
        os.chdir(old)
        sys.path.remove(str(folder))


def test_ctrl_c_saves_the_current_step_and_resumes(tmp_path, reference, capsys):
    """SIGINT (in this process: the handler is hyperzoo's while training) stops after the step and saves it."""
    config = _setup(tmp_path, at_step=2, signal_name="SIGINT")  # epoch 0; the periodic save would be at step 3
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when pytest runs in a background job of a script
    assert _in_process(tmp_path, config) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert "interrupted at epoch 0, step 2" in err[-2] and "last.ckpt" in err[-2] and "same command" in err[-2]
    run = tmp_path / "run"
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 2
    assert signal.getsignal(signal.SIGINT) is before  # the handler was put back

    assert _in_process(tmp_path, config) == 0  # the same command
    steps = (run / "steps.txt").read_text().split()[1::2]
    # the interrupted run stopped as step 2 began (before training on it); the rerun continued at step 2
    assert list(map(int, steps)) == [0, 1, 2, *range(2, 10)]
    _assert_same_result(run, reference)


def test_ghn_training_resumes_mid_epoch_exactly(tiny_graphs, tmp_path):
    """GHN training (images + meta-batches of architectures): interrupted mid-epoch at step 3, resumed, equal at 5."""
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import Callback

    from hyperzoo.data import GraphImageDataModule
    from hyperzoo.lightning import GHNModule
    from hyperzoo.lightning.resume import ResumableCheckpoint, TrainingInterrupted

    class CtrlC(Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.global_step == 3:
                os.kill(os.getpid(), signal.SIGINT)

    def fit(root: Path, extra: list, ckpt_path: str | None = None) -> GHNModule:
        pl.seed_everything(0, verbose=False)
        module = GHNModule("ghn2", ghn_kwargs={"hid": 16, "max_shape": [16, 16, 3, 3]}, widths=[8, 16])
        data = GraphImageDataModule(
            train_graphs=str(tiny_graphs),
            root="sample",
            batch_size=16,
            meta_batch=2,
            limit=96,  # 6 steps an epoch
        )
        trainer = pl.Trainer(
            accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False, max_steps=5,
            limit_val_batches=0, default_root_dir=str(root),
            callbacks=[ResumableCheckpoint(str(root / "checkpoints"), every_n_train_steps=2), *extra],
        )  # fmt: skip
        trainer.fit(module, data, ckpt_path=ckpt_path)
        return module

    reference = fit(tmp_path / "reference", [])
    with pytest.raises(TrainingInterrupted, match="step 3"):
        fit(tmp_path / "run", [CtrlC()])
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["global_step"] == 3
    resumed = fit(tmp_path / "run", [], str(last))
    for key, value in reference.ghn.state_dict().items():
        torch.testing.assert_close(resumed.ghn.state_dict()[key], value, rtol=1e-5, atol=1e-6, msg=key)


def test_csv_rows_after_the_checkpoint_are_dropped(tmp_path):
    from hyperzoo.lightning.loggers import ResumableCSVLogger

    logger = ResumableCSVLogger(tmp_path, name="", version="csv")
    for step in range(6):
        logger.log_metrics({"train/loss": float(step)}, step=step)
    logger.log_metrics({"val/acc": 0.5}, step=3)
    logger.save()
    assert logger.drop_rows_after(3) == 2  # steps 4 and 5 (the killed run's, which the resumed run logs again)
    steps = [r["step"] for r in _rows_at(tmp_path / "csv")]
    assert steps == ["0", "1", "2", "3", "3"]
    again = ResumableCSVLogger(tmp_path, name="", version="csv")  # the resumed run appends below
    again.log_metrics({"train/loss": 4.0}, step=4)
    again.save()
    assert [r["step"] for r in _rows_at(tmp_path / "csv")][-1] == "4"


def _rows_at(folder: Path) -> list[dict[str, str]]:
    with (folder / "metrics.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_bad_checkpoint_interval_is_an_error_and_stale_temporaries_go(tmp_path):
    from hyperzoo.errors import ConfigError
    from hyperzoo.lightning.resume import ResumableCheckpoint, find_resumable

    with pytest.raises(ConfigError, match="every_n_train_steps must be >= 0, got -1"):
        ResumableCheckpoint(every_n_train_steps=-1)
    (tmp_path / ".last.ckpt.123.tmp").write_bytes(b"half")
    assert find_resumable(tmp_path) is None and not list(tmp_path.iterdir())

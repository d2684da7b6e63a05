"""LightningModules and the LightningCLI of hyperzoo."""

from hyperzoo.lightning.classifier import ImageClassifier, lr_factor
from hyperzoo.lightning.loggers import ResumableCSVLogger

__all__ = ["ImageClassifier", "ResumableCSVLogger", "lr_factor"]

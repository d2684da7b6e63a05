"""LightningModules and the LightningCLI of hyperzoo."""

from hyperzoo.lightning.classifier import ImageClassifier
from hyperzoo.lightning.ghn_module import GHNModule
from hyperzoo.lightning.loggers import ResumableCSVLogger

__all__ = ["GHNModule", "ImageClassifier", "ResumableCSVLogger"]

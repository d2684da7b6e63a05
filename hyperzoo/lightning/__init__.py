"""LightningModules and the LightningCLI of hyperzoo."""

from hyperzoo.lightning.classifier import ImageClassifier, lr_factor

__all__ = ["ImageClassifier", "lr_factor"]

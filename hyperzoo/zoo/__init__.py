"""A local model zoo: train, store (safetensors + JSON), list and load CIFAR-10 models and local weight files."""

from hyperzoo.zoo.store import add_external, entry_path, list_zoo, load_meta, load_model, save_model, zoo_dir
from hyperzoo.zoo.train import ClassSubsetCIFAR10, evaluate, load_config, train_entry, train_zoo

load_zoo_model = load_model  # the name under which ``hyperzoo`` re-exports it

__all__ = [
    "ClassSubsetCIFAR10",
    "add_external",
    "entry_path",
    "evaluate",
    "list_zoo",
    "load_config",
    "load_meta",
    "load_model",
    "load_zoo_model",
    "save_model",
    "train_entry",
    "train_zoo",
    "zoo_dir",
]

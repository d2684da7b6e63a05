"""Target networks: CIFAR ResNets, Wide ResNets, every torchvision classifier, one registry.

Owns: the model registry (:func:`create_model`, :func:`list_models`; :data:`MODEL_SOURCES` names every module that
registers models, in one place), hyperzoo's CIFAR ResNets and Wide ResNets, torchvision and timm adapters (32x32
adaptation), the DeepNets-1M space and network, architecture spaces, the compute of a network
(:func:`count_macs`, :func:`count_params`), and width surgery: a network resized to a state dict of other widths
(:func:`resize_to_state`, which loads merged models; a property of the network, not of merging), and
GHN-orth's orthogonalized weights for fine-tuning from a prediction (:mod:`hyperzoo.nets.orthogonalize`).

May import: only the base modules (``errors``, ``registry``, ``io``, ``progress``, ``tables``, ``cli_types``,
``_lazy``, ``_procs``). The lowest layer: every other part of hyperzoo may import it.
"""

from hyperzoo.nets import deepnets1m  # noqa: F401  (hyperzoo.nets.deepnets1m after `import hyperzoo.nets`, as before)
from hyperzoo.nets.adapt import adapt_to_cifar
from hyperzoo.nets.cifar_resnet import BasicBlock, CifarResNet
from hyperzoo.nets.compute import count_macs, count_params, example_input
from hyperzoo.nets.factory import (
    MODEL_SOURCES,
    MODELS,
    create_model,
    is_model,
    list_models,
    model_family,
    register_model,
)
from hyperzoo.nets.resize import FollowsWidths, resize_to_state
from hyperzoo.nets.torchvision_models import TORCHVISION_MODELS, load_state_dict_file
from hyperzoo.nets.wide_resnet import WideBasicBlock, WideResNet

__all__ = [
    "MODELS",
    "MODEL_SOURCES",
    "TORCHVISION_MODELS",
    "BasicBlock",
    "CifarResNet",
    "FollowsWidths",
    "WideBasicBlock",
    "WideResNet",
    "adapt_to_cifar",
    "count_macs",
    "count_params",
    "create_model",
    "example_input",
    "is_model",
    "list_models",
    "load_state_dict_file",
    "model_family",
    "register_model",
    "resize_to_state",
]

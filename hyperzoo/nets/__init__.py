"""Target networks: CIFAR ResNets, Wide ResNets, every torchvision classifier, one registry."""

from hyperzoo.nets import cifar_resnet, deepnets1m, torchvision_models, wide_resnet  # noqa: F401  (fill the registry)
from hyperzoo.nets.adapt import adapt_to_cifar
from hyperzoo.nets.cifar_resnet import BasicBlock, CifarResNet
from hyperzoo.nets.factory import MODELS, create_model, is_model, list_models, model_family, register_model
from hyperzoo.nets.torchvision_models import TORCHVISION_MODELS, load_state_dict_file
from hyperzoo.nets.wide_resnet import WideBasicBlock, WideResNet

__all__ = [
    "MODELS",
    "TORCHVISION_MODELS",
    "BasicBlock",
    "CifarResNet",
    "WideBasicBlock",
    "WideResNet",
    "adapt_to_cifar",
    "create_model",
    "is_model",
    "list_models",
    "load_state_dict_file",
    "model_family",
    "register_model",
]
import hyperzoo.layers  # noqa: F401  (registers the LAuReL, GCR and MixtureGrowth model names)

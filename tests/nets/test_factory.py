import pytest
import torchvision

from hyperzoo.errors import UnknownNameError
from hyperzoo.nets import create_model, is_model, list_models, model_family


def test_every_torchvision_classifier_is_registered():
    names = torchvision.models.list_models(module=torchvision.models)
    assert len(names) == 80
    assert set(names) <= set(list_models())
    assert all(model_family(n) == "torchvision" for n in names)


def test_cifar_families_are_registered():
    assert list_models("resnet*", family="cifar_resnet") == [
        "resnet110", "resnet1202", "resnet20", "resnet32", "resnet44", "resnet56", "resnet8"
    ]  # fmt: skip
    assert {"wrn16_4", "wrn28_10"} <= set(list_models("wrn*"))
    assert is_model("resnet20") and not is_model("resnet21")


def test_none_overrides_keep_model_defaults():
    model = create_model("resnet8", num_classes=None, width=None)
    assert model.fc.out_features == 10
    assert create_model("resnet8", num_classes=7).fc.out_features == 7


def test_typo_lists_closest_names():
    with pytest.raises(UnknownNameError, match=r"unknown model 'resnet2O'.*'resnet20'"):
        create_model("resnet2O")
    with pytest.raises(UnknownNameError, match="wrn28_10"):
        create_model("wrn28-10")

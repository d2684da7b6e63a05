import pytest
import torch
from safetensors.torch import save_file

from hyperzoo.errors import ConfigError, DataError
from hyperzoo.nets import create_model, load_state_dict_file


def test_build_without_download_at_224():
    net = create_model("resnet18", num_classes=10)
    assert net.fc.out_features == 10 and net.expected_input_size == 224
    assert net(torch.randn(1, 3, 224, 224)).shape == (1, 10)


def test_aux_heads_off_by_default():
    assert create_model("googlenet").aux_logits is False
    assert create_model("inception_v3", init_weights=False).aux_logits is False


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_local_weights_load_before_adaptation(tmp_path, suffix):
    src = create_model("resnet18")  # ImageNet-shaped, 1000 classes
    state = src.state_dict()
    path = tmp_path / f"w{suffix}"
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save({"state_dict": state}, path)
    net = create_model("resnet18", num_classes=10, adapt_cifar=True, weights_path=str(path))
    # the 7x7 stem was loaded, then its centre kept; the 1000-class head was skipped
    assert torch.equal(net.conv1.weight, state["conv1.weight"][:, :, 2:5, 2:5])
    assert torch.equal(net.layer1[0].conv1.weight, state["layer1.0.conv1.weight"])
    assert net.fc.out_features == 10


def test_bad_weight_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_state_dict_file(tmp_path / "missing.pth")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(DataError, match="cannot read weights file"):
        load_state_dict_file(bad)
    other = tmp_path / "other.pth"
    torch.save(create_model("resnet8").state_dict(), other)
    with pytest.raises(ConfigError, match="do not fit ResNet"):
        create_model("resnet18", weights_path=str(other))

"""timm models by name: every parameter mapped, meta trace equal to the real one, fully predicted by a GHN.

A small representative subset runs by default; every family of ``COVERAGE_SET`` runs with ``-m slow``.
"""

from __future__ import annotations

import gc
import warnings

import pytest
import torch

timm = pytest.importorskip("timm")

from hyperzoo.errors import ConfigError, UnknownNameError  # noqa: E402
from hyperzoo.ghn import create_ghn  # noqa: E402
from hyperzoo.ghn.unpredicted import UnpredictedParametersWarning  # noqa: E402
from hyperzoo.graphs import PRIMITIVES, graph_from_module  # noqa: E402
from hyperzoo.graphs.trace_report import MetaTraceFallbackWarning  # noqa: E402
from hyperzoo.nets import create_model, is_model, model_family  # noqa: E402
from hyperzoo.nets.timm_models import COVERAGE_SET  # noqa: E402

# CNN with weight-standardised convs (gain), ViT (class token, positional embedding), CaiT-style layer scales and
# class attention, learned additive attention masks (MaxViT relative position bias), ConvNeXt layer scales.
FAST = ["test_nfnet", "test_vit", "test_maxvit", "test_convnext", "test_byobnet"]


def _ghn():
    torch.manual_seed(0)
    return create_ghn("ghn2", hid=16, max_shape=(16, 16, 3, 3), num_ops=len(PRIMITIVES), num_classes=10).eval()


def check_fully_predicted(name: str, kwargs: dict) -> None:
    torch.manual_seed(0)
    model = create_model(f"timm:{name}", num_classes=10, **kwargs).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error", MetaTraceFallbackWarning)
        warnings.simplefilter("error", UnpredictedParametersWarning)
        ghn = _ghn()  # hyperzoo's full vocabulary, hence hyperzoo's graph rules (attention kernels are nodes)
        graph = graph_from_module(model, rules=ghn.graph_rules)  # strict: every parameter has a role
        assert graph.unmapped == [] and graph.meta_fallback == ""
        real = graph_from_module(model, meta=False, rules=ghn.graph_rules)
        assert real.to_json_dict() == graph.to_json_dict()
        before = {k: p.detach().clone() for k, p in model.named_parameters()}
        with torch.no_grad():
            ghn(model, graph)
    unused = set(graph.unused)
    for k, p in model.named_parameters():
        assert bool(torch.isfinite(p).all()), k
        if k not in unused and p.numel() > 1:
            assert not torch.equal(p, before[k]), f"{k} kept its initial value"
    size = model.expected_input_size
    hw = (size, size) if isinstance(size, int) else tuple(size)
    with torch.no_grad():
        out = model(torch.randn(2, 3, *hw))
    assert out.shape == (2, 10) and bool(torch.isfinite(out).all())
    del model, graph, real
    gc.collect()


@pytest.mark.parametrize("name", FAST)
def test_representative_timm_models(name):
    check_fully_predicted(name, {})


# Known gaps (experiments/RESULTS.md, "Models from timm: coverage"): strict xfails, so a fix shows up.
KNOWN_GAPS = {
    "sequencer2d_s": "nn.LSTM weights have no role (and its meta trace is a 10k-node decomposition)",
}


def _param(family: str, name: str, kwargs: dict):
    marks = [pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[name])] if name in KNOWN_GAPS else []
    return pytest.param(name, kwargs, id=f"{family}-{name}", marks=marks)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "kwargs"), [_param(f, n, k) for f, n, k in COVERAGE_SET if n not in FAST])
def test_every_timm_family(name, kwargs):
    check_fully_predicted(name, kwargs)


def test_names_family_and_errors():
    assert is_model("timm:resnet18") and model_family("timm:resnet18") == "timm"
    assert not is_model("timm:no_such_net")
    with pytest.raises(UnknownNameError, match="timm:resnet18"):
        create_model("timm:resnet1")
    with pytest.raises(ConfigError, match="without pretrained"):
        create_model("timm:test_resnet", pretrained=True)
    net = create_model("timm:test_resnet", num_classes=7)
    assert net.get_classifier().out_features == 7 and net.expected_input_size == (160, 160)


def test_adapt_cifar():
    vit = create_model("timm:test_vit", num_classes=10, adapt_cifar=True)
    assert vit.expected_input_size == 32 and vit.patch_embed.img_size == (32, 32)
    cnn = create_model("timm:test_resnet", num_classes=10, adapt_cifar=True)
    assert cnn.expected_input_size == 32 and cnn.conv1[0].stride == (1, 1)  # the stem conv, stride 2 -> 1
    with torch.no_grad():
        assert cnn(torch.randn(2, 3, 32, 32)).shape == (2, 10)
        assert vit(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert graph_from_module(cnn).input_size == [3, 32, 32]

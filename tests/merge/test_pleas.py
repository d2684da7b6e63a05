"""PLeaS: partial widths, honest compute, least squares, different label spaces."""

from __future__ import annotations

import pytest
import torch

from hyperzoo.errors import ConfigError, DataError
from hyperzoo.merge.baselines import merge_models
from hyperzoo.merge.permute import load_state, permute_state, random_permutations
from hyperzoo.merge.pleas import build_merged, partial_plan
from hyperzoo.merge.spec import derive_spec
from hyperzoo.nets import create_model
from tests.merge.conftest import randomize

X = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(5))


def _batches(n: int = 3) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(9)
    return [torch.randn(8, 3, 16, 16, generator=g) for _ in range(n)]


@pytest.mark.parametrize(
    ("shortcut", "width", "multiplier"),
    # multiplier 0.8: stages of 13/26/51 channels, so the zero-padding shortcuts pad an odd number of channels
    # (6 + 7, 12 + 13) and independent rounding of the two zero blocks would shift the shortcut's channels
    [
        ("A", 1.0, 1.0),
        ("A", 1.5, 1.0),
        ("A", 2.0, 1.0),
        ("B", 1.25, 1.0),
        ("B", 2.0, 1.0),
        ("A", 1.5, 0.8),
        ("A", 1.9, 0.8),
        ("A", 2.0, 0.8),
    ],
)
def test_permuted_copy_merges_back(shortcut: str, width: float, multiplier: float) -> None:
    torch.manual_seed(0)
    a = randomize(create_model("resnet8", shortcut=shortcut, width=multiplier))
    spec = derive_spec(a, input_size=16)
    b = load_state(a, permute_state(spec, a.state_dict(), random_permutations(spec)), spec)
    result = merge_models(
        a, b, "pleas", width, _batches(), match_batches=3, ls_batches=3, bn_batches=0, ridge=1e-4, spec=spec
    )
    # The copies make the Gram exactly rank deficient, and its products are float32: with ridge 1e-6 the error
    # reached 8x the tolerance for some weight seeds (a flaky test); 1e-4 (towards the permuted-average init,
    # which is exact here) keeps it under 0.4 % of the tolerance over 6 seeds x 3 cases.
    with torch.no_grad():
        torch.testing.assert_close(result.model.eval()(X), a(X), atol=5e-3, rtol=5e-3)


def test_compute_is_counted_on_the_dense_model() -> None:
    a = randomize(create_model("resnet8", shortcut="B"))
    spec = derive_spec(a, input_size=16)
    r1 = merge_models(a, a, "pleas", 1.0, _batches(1), match_batches=1, ls_batches=1, bn_batches=1, spec=spec)
    r2 = merge_models(a, a, "pleas", 2.0, _batches(1), match_batches=1, ls_batches=1, bn_batches=1, spec=spec)
    assert r1.info["macs_ratio"] == pytest.approx(1.0)
    # doubling every inner width doubles both in and out channels: ~4x MACs (stem input and logits stay)
    assert 3.5 < r2.info["macs_ratio"] < 4.0
    assert r2.info["params"] > 3.9 * r2.info["params_single"] - 5000


def test_different_label_spaces_keep_both_heads() -> None:
    a = randomize(create_model("resnet8", num_classes=5, shortcut="B"), seed=1)
    b = randomize(create_model("resnet8", num_classes=5, shortcut="B"), seed=2)
    spec = derive_spec(a, input_size=16)
    plan = partial_plan(spec, {g: torch.arange(spec.leaves[g].size) for g in spec.groups}, None, 2.0, "different")
    merged = build_merged(a, b, spec, plan).eval()
    with torch.no_grad():
        out = merged(X)
        assert out.shape == (4, 10)
        torch.testing.assert_close(out[:, :5], a(X), atol=1e-4, rtol=1e-4)  # no channel merged: exact
        torch.testing.assert_close(out[:, 5:], b(X), atol=1e-4, rtol=1e-4)
    r = merge_models(a, b, "pleas", 1.5, _batches(), "different", 3, 3, 3, spec=spec)
    assert r.model(X).shape == (4, 10)


def test_bad_width_and_method() -> None:
    a = create_model("resnet8")
    with pytest.raises(ConfigError, match=r"width must be in \[1, 2\]"):
        merge_models(a, a, "pleas", 2.5, _batches(1))
    with pytest.raises(ConfigError, match="unknown merge method"):
        merge_models(a, a, "zipit", 1.0, _batches(1))
    with pytest.raises(ConfigError, match="different architecture"):
        merge_models(a, create_model("resnet20"), "average", 1.0, _batches(1))
    with pytest.raises(ConfigError, match="needs training batches"):
        merge_models(a, a, "pleas", 1.0, None)


def test_too_few_samples_for_least_squares() -> None:
    a = randomize(create_model("resnet8", shortcut="B"))
    tiny = [torch.randn(2, 3, 4, 4)]
    with pytest.raises(DataError, match="samples"):
        merge_models(a, a, "pleas", 1.0, tiny, match_batches=1, ls_batches=1, bn_batches=1, ridge=0.0)
    r = merge_models(a, a, "pleas", 1.0, tiny, match_batches=1, ls_batches=1, bn_batches=1, ridge=1e-2)
    assert r.info["ls_rows_min"] < 100  # the ridge term made the under-determined solve well posed


@pytest.mark.parametrize("name", ["mobilenet_v2", pytest.param("regnet_y_400mf", marks=pytest.mark.slow)])
def test_partial_widths_with_depthwise_and_grouped_convs(name: str) -> None:
    a = randomize(create_model(name, num_classes=10))
    spec = derive_spec(a, input_size=32)
    perms = random_permutations(spec)
    b = load_state(a, permute_state(spec, a.state_dict(), perms), spec)
    inverse = {g: torch.argsort(p) for g, p in perms.items()}
    merged = build_merged(a, b, spec, partial_plan(spec, inverse, None, 1.5)).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():  # merged pairs average identical channels, separate ones are copies: exact
        torch.testing.assert_close(merged(x), a(x), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    "kernel, stride, padding, dilation",
    [(3, 1, 1, 1), (3, 2, 1, 1), (1, 2, 0, 1), (5, 1, 2, 2), ((3, 1), (2, 1), (1, 0), 1)],
)
def test_sampled_patches_equal_the_rows_of_the_full_im2col(kernel, stride, padding, dilation) -> None:
    from torch import nn

    from hyperzoo.merge.pleas import _patches, _sampled_patches

    torch.manual_seed(0)
    conv = nn.Conv2d(7, 4, kernel, stride=stride, padding=padding, dilation=dilation)
    x = torch.randn(5, 7, 13, 11)
    y = conv(x)
    full = _patches(x, conv)
    assert full.shape[0] == 5 * y.shape[2] * y.shape[3]
    keep = torch.randperm(full.shape[0])[:50]
    assert torch.equal(_sampled_patches(x, conv, keep, (y.shape[2], y.shape[3])), full[keep])

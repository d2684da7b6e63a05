"""Baselines: averaging, Git Re-Basin, BN reset, the ensemble."""

from __future__ import annotations

import torch

from hyperzoo.merge.baselines import Ensemble, merge_models, reset_bn_stats
from hyperzoo.merge.permute import load_state, permute_state, random_permutations
from hyperzoo.merge.spec import derive_spec
from hyperzoo.nets import create_model
from tests.merge.conftest import randomize

X = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))


def test_rebasin_of_a_permuted_copy_is_exact_and_averaging_is_not() -> None:
    a = randomize(create_model("resnet20", shortcut="B"))
    spec = derive_spec(a)
    b = load_state(a, permute_state(spec, a.state_dict(), random_permutations(spec)), spec)
    batches = [torch.randn(8, 3, 32, 32) for _ in range(2)]
    reb = merge_models(a, b, "rebasin", 1.0, batches, bn_batches=0, spec=spec).model.eval()
    avg = merge_models(a, b, "average", 1.0, batches, bn_batches=0, spec=spec).model.eval()
    with torch.no_grad():
        torch.testing.assert_close(reb(X), a(X), atol=1e-4, rtol=1e-4)
        assert float((avg(X) - a(X)).abs().max()) > 1e-2


def test_reset_bn_stats_matches_batch_statistics() -> None:
    model = randomize(create_model("resnet8"))
    x = torch.randn(16, 3, 32, 32)
    reset_bn_stats(model, [x], 1)
    with torch.no_grad():
        stem = model.conv1(x)
    torch.testing.assert_close(model.bn1.running_mean, stem.mean((0, 2, 3)), atol=1e-5, rtol=1e-4)


def test_ensemble() -> None:
    a, b = randomize(create_model("resnet8"), 1), randomize(create_model("resnet8"), 2)
    with torch.no_grad():
        torch.testing.assert_close(Ensemble(a, b)(X), 0.5 * (a(X) + b(X)))
        assert Ensemble(a, b, concat=True)(X).shape == (4, 20)

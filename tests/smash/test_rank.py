import pytest
import torch

from hyperzoo.data import BatchAugment
from hyperzoo.errors import ConfigError
from hyperzoo.smash.model import SMASH
from hyperzoo.smash.rank import rank_correlation, run_ranking, score_architectures


def test_rank_correlation_perfect_and_reversed():
    x = list(range(10))
    r = rank_correlation(x, [2 * v for v in x], n_boot=200)
    assert r.spearman == pytest.approx(1.0) and r.kendall == pytest.approx(1.0)
    assert r.spearman_ci[0] == pytest.approx(1.0)
    r = rank_correlation(x, [-v for v in x], n_boot=200)
    assert r.kendall == pytest.approx(-1.0)


def test_rank_correlation_matches_scipy_and_ci_contains_estimate():
    from scipy.stats import kendalltau, spearmanr

    g = torch.Generator().manual_seed(0)
    x = torch.randn(30, generator=g)
    y = x + torch.randn(30, generator=g)
    r = rank_correlation(x.tolist(), y.tolist(), n_boot=500)
    assert r.spearman == pytest.approx(spearmanr(x, y)[0])
    assert r.kendall == pytest.approx(kendalltau(x, y)[0])
    assert r.spearman_ci[0] <= r.spearman <= r.spearman_ci[1]
    assert r.kendall_ci[0] <= r.kendall <= r.kendall_ci[1]
    assert r.spearman_ci[1] - r.spearman_ci[0] > 0.05


def test_rank_correlation_errors():
    with pytest.raises(ConfigError, match="at least 3"):
        rank_correlation([1, 2], [1, 2])
    with pytest.raises(ConfigError, match="equal-length"):
        rank_correlation([1, 2, 3], [1, 2])


def _tiny_data(n=64):
    g = torch.Generator().manual_seed(0)
    aug = BatchAugment((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    train_x = torch.randint(0, 256, (n, 32, 32, 3), dtype=torch.uint8, generator=g)
    val = torch.randint(0, 256, (32, 32, 32, 3), dtype=torch.uint8, generator=g)
    return {
        "train_x": train_x, "train_y": torch.randint(0, 10, (n,), generator=g), "augment": aug,
        "val_x": aug(val, train=False), "val_y": torch.randint(0, 10, (32,), generator=g),
    }  # fmt: skip


def test_scores_are_errors_and_reproducible():
    model = SMASH({"max_ops": 2}, hypernet={"width": 8, "growth": 4, "depth": 1})
    data = _tiny_data()
    archs = [model.space.sample(i) for i in range(3)]
    a = score_architectures(model, archs, data["val_x"], data["val_y"])
    assert a == score_architectures(model, archs, data["val_x"], data["val_y"])
    assert all(0.0 <= e <= 1.0 for e in a)


def test_run_ranking_end_to_end():
    model = SMASH({"max_ops": 2}, hypernet={"width": 8, "growth": 4, "depth": 1})
    result = run_ranking(model, _tiny_data(), num_archs=5, num_train=3, train_steps=2, batch_size=8, n_boot=50,
                         log=None)  # fmt: skip
    trained = [r for r in result.records if r.trained]
    assert len(result.records) == 5 and len(trained) == 3
    assert result.correlation.n == 3
    scores = sorted(r.smash_error for r in result.records)
    picked = sorted(r.smash_error for r in trained)
    assert picked[0] == scores[0] and picked[-1] == scores[-1]  # best and worst are trained
    with pytest.raises(ConfigError):
        run_ranking(model, _tiny_data(), num_archs=5, num_train=6, log=None)

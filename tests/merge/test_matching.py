"""Matching: a permuted copy is matched back exactly, costs are read in B's original basis."""

from __future__ import annotations

import torch

from hyperzoo.merge.matching import activation_matching, solve_assignment, weight_matching
from hyperzoo.merge.permute import load_state, permute_state, random_permutations
from hyperzoo.merge.spec import derive_spec
from hyperzoo.nets import create_model
from tests.merge.conftest import randomize


def _pair(shortcut: str = "A"):
    a = randomize(create_model("resnet20", shortcut=shortcut))
    spec = derive_spec(a)
    perms = random_permutations(spec, torch.Generator().manual_seed(1))
    b = load_state(a, permute_state(spec, a.state_dict(), perms), spec)
    return a, b, spec, perms


def test_solve_assignment_maximizes() -> None:
    cost = torch.tensor([[1.0, 5.0], [4.0, 1.0]])
    assert solve_assignment(cost).tolist() == [1, 0]


def test_weight_matching_undoes_a_permutation() -> None:
    a, b, spec, perms = _pair()
    found, costs = weight_matching(spec, a.state_dict(), b.state_dict())
    for g in spec.groups:
        assert torch.equal(found[g], torch.argsort(perms[g]))  # B channel j = A channel perms[j]
        n = len(found[g])
        matched = costs[g][torch.arange(n), found[g]]
        assert torch.allclose(matched, costs[g].max(1).values)  # the matched entry is each row's best


def test_activation_matching_undoes_a_permutation() -> None:
    a, b, spec, perms = _pair("B")
    batches = [torch.randn(4, 3, 32, 32) for _ in range(2)]
    found, corr = activation_matching(a, b, spec, batches, num_batches=2, max_rows=512)
    for g in spec.groups:
        assert torch.equal(found[g], torch.argsort(perms[g]))
        n = len(found[g])
        matched = corr[g][torch.arange(n), found[g]]
        assert float(matched.max()) <= 1 + 1e-4  # a mean of correlations (dead ReLU channels count 0)

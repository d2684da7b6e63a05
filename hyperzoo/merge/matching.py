"""Matching the channels of two networks, group by group: activation matching and weight matching.

Activation matching (Li et al. 2016; Ainsworth et al., "Git Re-Basin", ICLR 2023, Sec. 3.1; the correlation
variant used by REPAIR): run both models on the same batches, and for every group ``g`` accumulate the
Pearson correlation between channel ``i`` of model A and channel ``j`` of model B at every activation
(site) of the group,

    C_g[i, j] = mean over sites s of  E[(a_s,i - mu_a,s,i)(b_s,j - mu_b,s,j)] / (sigma_a,s,i sigma_b,s,j),

from streamed sums: a first pass gives each site's channel means and deviations (O(C) per site), a second
adds standardized cross products into one ``C x C`` matrix per group (O(C^2) memory per group, activations
never stored). Then ``P_g = argmax_P sum_i C_g[i, P(i)]`` by ``scipy.optimize.linear_sum_assignment``.

Weight matching (Git Re-Basin, Alg. 1): coordinate descent over groups in random order; for group ``g`` with the
other permutations fixed, ``C_g = sum over tensors W touching g of W_A^(g) (W_B^(g, others permuted))^T`` and
``P_g`` is again an assignment; sweeps stop when no group improves. Every cost matrix returned here is in B's
original channel basis (row: channel of A, column: channel of B), so ``C[i, P[i]]`` is the matched similarity
(the PLeaS reference read the last sweep's matrix in the permuted basis).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from einops import rearrange
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from hyperzoo.errors import DataError
from hyperzoo.merge.permute import Indices, axis_index, gather_axis
from hyperzoo.merge.spec import AxisTie, PermutationSpec

__all__ = ["activation_correlations", "activation_matching", "solve_assignment", "weight_matching"]

_STATS = ("running_mean", "running_var", "num_batches_tracked")


def solve_assignment(cost: Tensor) -> Tensor:
    """``perm`` maximizing ``sum_i cost[i, perm[i]]`` (exact, Hungarian-type solver from scipy)."""
    _, cols = linear_sum_assignment(cost.detach().double().cpu().numpy(), maximize=True)
    return torch.as_tensor(cols, dtype=torch.long)


def _inputs(batch: Any) -> Tensor:
    return batch[0] if isinstance(batch, (list, tuple)) else batch


class _SiteRecorder:
    """Forward hooks that keep each site's activations as ``(rows, C)``, subsampled to at most ``max_rows``."""

    def __init__(self, model: nn.Module, spec: PermutationSpec, max_rows: int) -> None:
        self.spec, self.max_rows = spec, max_rows
        self.out: dict[int, Tensor] = {}
        self.batch = 0
        self.handles = []
        by_module: dict[str, list[int]] = {}
        for k, site in enumerate(spec.sites):
            by_module.setdefault(site.module, []).append(k)
        modules = dict(model.named_modules())
        for name, ks in by_module.items():
            self.handles.append(modules[name].register_forward_hook(self._hook(ks)))

    def _hook(self, ks: list[int]) -> Any:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            for k in ks:
                dim = self.spec.sites[k].dim
                view = output.detach().movedim(dim, -1)  # (..., C), no copy
                n = view[..., 0].numel()
                if n > self.max_rows:  # same rows for both models: seeded by batch and site
                    g = torch.Generator().manual_seed(1_000_003 * self.batch + k)
                    keep = torch.randperm(n, generator=g)[: self.max_rows].to(view.device)
                    # gather the kept rows straight from the activation (no full channels-last copy first)
                    rows = view[torch.unravel_index(keep, view.shape[:-1])].float()
                else:  # later in-place ops (ReLU(inplace=True)) must not change what was recorded
                    rows = view.reshape(n, view.shape[-1]).float().clone()
                self.out[k] = rows

        return hook

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def _slices(spec: PermutationSpec, k: int) -> list[tuple[int, int]]:
    """(leaf, offset) of every free leaf in site ``k``."""
    res, off = [], 0
    for leaf in spec.sites[k].segments:
        if not spec.leaves[leaf].fixed:
            res.append((leaf, off))
        off += spec.leaves[leaf].size
    return res


@torch.no_grad()
def activation_correlations(
    model_a: nn.Module,
    model_b: nn.Module,
    spec: PermutationSpec,
    batches: Iterable[Any],
    num_batches: int = 100,
    max_rows: int = 4096,
    eps: float = 1e-5,
) -> dict[int, Tensor]:
    """The mean channel correlation matrix ``C_g`` (rows: A, columns: B) of every group, from two passes.

    Args:
        model_a: first model.
        model_b: second model, same architecture.
        spec: the architecture's spec.
        batches: re-iterable batches (tensors or ``(x, y)`` tuples), e.g. a DataLoader; passes 1 and 2 use
            the same first ``num_batches``.
        num_batches: batches per pass.
        max_rows: rows (pixels x images) kept per site and batch, a fixed random subset shared by both models.
        eps: added to the deviations.

    Raises:
        DataError: no batch at all.
    """
    was = model_a.training, model_b.training
    model_a.eval()
    model_b.eval()
    rec_a, rec_b = _SiteRecorder(model_a, spec, max_rows), _SiteRecorder(model_b, spec, max_rows)
    device = next(model_a.parameters()).device
    n_sites = len(spec.sites)
    mom = [[torch.zeros(0)] * 4 for _ in range(n_sites)]  # sum a, sum a^2, sum b, sum b^2
    count = [0] * n_sites
    corr = {g: torch.zeros(spec.leaves[g].size, spec.leaves[g].size, device=device) for g in spec.groups}
    uses = dict.fromkeys(spec.groups, 0)
    try:
        for phase in (0, 1):
            seen = 0
            for i, batch in enumerate(batches):
                if i >= num_batches:
                    break
                x = _inputs(batch).to(device)
                rec_a.batch = rec_b.batch = i
                model_a(x)
                model_b(x)
                for k in range(n_sites):
                    a, b = rec_a.out[k], rec_b.out[k]
                    if phase == 0:  # float64 moments: E[a^2] - E[a]^2 cancels badly in float32
                        a64, b64 = a.double(), b.double()
                        s = (a64.sum(0), (a64 * a64).sum(0), b64.sum(0), (b64 * b64).sum(0))
                        mom[k] = [m + v if m.numel() else v for m, v in zip(mom[k], s, strict=True)]
                        count[k] += a.shape[0]
                        continue
                    n = count[k]
                    mu_a, mu_b = mom[k][0] / n, mom[k][2] / n
                    sd_a = (mom[k][1] / n - mu_a**2).clamp_min(0).sqrt() + eps
                    sd_b = (mom[k][3] / n - mu_b**2).clamp_min(0).sqrt() + eps
                    za = ((a.double() - mu_a) / sd_a).float()
                    zb = ((b.double() - mu_b) / sd_b).float()
                    for leaf, off in _slices(spec, k):
                        size = spec.leaves[leaf].size
                        corr[leaf] += za[:, off : off + size].T @ zb[:, off : off + size] / n
                        if i == 0:
                            uses[leaf] += 1
                seen += 1
            if seen == 0:
                raise DataError("activation matching got no batches; pass a non-empty loader")
    finally:
        rec_a.close()
        rec_b.close()
        model_a.train(was[0])
        model_b.train(was[1])
    return {g: (c / max(1, uses[g])).cpu() for g, c in corr.items()}


def activation_matching(
    model_a: nn.Module,
    model_b: nn.Module,
    spec: PermutationSpec,
    batches: Iterable[Any],
    num_batches: int = 100,
    max_rows: int = 4096,
) -> tuple[Indices, dict[int, Tensor]]:
    """Permutations of B's channels that best match A's (``perm[g][i]``: B channel matched to A channel ``i``).

    Returns:
        ``(perms, correlations)``; see :func:`activation_correlations`.
    """
    corr = activation_correlations(model_a, model_b, spec, batches, num_batches, max_rows)
    return {g: solve_assignment(c) for g, c in corr.items()}, corr


def _rows(t: Tensor, tie: AxisTie, spec: PermutationSpec, leaf: int) -> list[Tensor]:
    """The slices of axis ``tie.dim`` of ``t`` that belong to ``leaf`` (one per occurrence), as ``(n, rest)``."""
    total = sum(spec.leaves[i].size for i in tie.segments)
    x = rearrange(t.movedim(tie.dim, 0), "(o c i) ... -> c o i (...)", o=tie.outer, c=total, i=tie.inner)
    out, off = [], 0
    for i in tie.segments:
        if i == leaf:
            out.append(rearrange(x[off : off + spec.leaves[i].size], "c o i r -> c (o i r)"))
        off += spec.leaves[i].size
    return out


def _permuted(t: Tensor, ties: list[AxisTie], perms: Indices, spec: PermutationSpec) -> Tensor:
    """``t`` with every current permutation applied on every tied axis."""
    for tie in ties:
        if any(g in perms for g in tie.segments):
            t = gather_axis(t, tie.dim, axis_index(tie, spec, perms))
    return t


def _weight_cost(
    spec: PermutationSpec, sa: dict[str, Tensor], pb: dict[str, Tensor], perms: Indices, leaf: int
) -> Tensor:
    """``C[i, j] = sum <A channel i, B channel j>`` with B's other axes permuted, in B's original basis.

    ``pb`` holds B with *all* current permutations applied; the rows of ``leaf`` are therefore in the permuted
    order ``perms[leaf]`` and the columns are put back with its inverse.
    """
    n = spec.leaves[leaf].size
    cost = torch.zeros(n, n)  # float32 products and sums: a float64 copy per product cost 15 % of the run
    for name, ties in spec.ties.items():
        if name.rsplit(".", 1)[-1] in _STATS or name not in sa:
            continue
        for tie in ties:
            if leaf not in tie.segments:
                continue
            for ra, rb in zip(_rows(sa[name], tie, spec, leaf), _rows(pb[name], tie, spec, leaf), strict=True):
                cost.addmm_(ra, rb.T)
    return cost[:, torch.argsort(perms[leaf])].double()


@torch.no_grad()
def weight_matching(
    spec: PermutationSpec,
    state_a: dict[str, Tensor],
    state_b: dict[str, Tensor],
    max_iter: int = 100,
    seed: int = 0,
) -> tuple[Indices, dict[int, Tensor]]:
    """Git Re-Basin weight matching by coordinate descent over the spec's groups.

    Args:
        spec: the architecture's spec.
        state_a: model A's state dict.
        state_b: model B's state dict (same architecture).
        max_iter: most sweeps over all groups.
        seed: order of the groups in each sweep.

    Returns:
        ``(perms, costs)``: ``perms[g][i]`` is the B channel matched to A channel ``i``; ``costs[g]`` the
        final cost matrix of every group, computed with all other groups at their final permutations, in B's
        original basis.
    """
    spec.check_compatible(state_b)
    keep = [k for k in spec.ties if k in state_a and state_a[k].is_floating_point()]
    sa = {k: state_a[k].detach().float().cpu() for k in keep}
    sb = {k: state_b[k].detach().float().cpu() for k in keep}
    perms: Indices = {g: torch.arange(spec.leaves[g].size) for g in spec.groups}
    pb = dict(sb)  # B with all current permutations applied
    touching: dict[int, list[str]] = {g: [] for g in spec.groups}
    for name in keep:
        for g in {leaf for tie in spec.ties[name] for leaf in tie.segments}:
            if g in touching:
                touching[g].append(name)
    rng = np.random.default_rng(seed)
    for _ in range(max_iter):
        progress = False
        for g in rng.permutation(spec.groups):
            g = int(g)
            cost = _weight_cost(spec, sa, pb, perms, g)
            new = solve_assignment(cost)
            rows = torch.arange(len(new))
            if float(cost[rows, new].sum() - cost[rows, perms[g]].sum()) > 1e-12:
                perms[g], progress = new, True
                for name in touching[g]:
                    pb[name] = _permuted(sb[name], spec.ties[name], perms, spec)
        if not progress:
            break
    costs = {g: _weight_cost(spec, sa, pb, perms, g).float() for g in spec.groups}
    return perms, costs

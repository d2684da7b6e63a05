"""Gated graph neural network with virtual edges, GHN-2's node update (Knyazev et al., 2021, Eq. 3-4).

One round (``T = 1``) is a forward sweep over the nodes in topological order followed by a backward sweep in reverse
order. In the forward sweep node ``v`` receives

    m_v = sum_{u in N^1_in(v)} MLP(h_u) + sum_{u in N^s_in(v), s <= s_max} MLP_ve(h_u) / s        (Eq. 4)

(the second sum runs over every incoming edge, real ones included, each divided by its shortest-path length ``s``)
and updates ``h_v <- GRU(m_v, h_v)`` (Eq. 3); the backward sweep does the same over outgoing edges. The reference
(``ppuda/ghn/gatedgnn.py``) visits the nodes one by one. Here all nodes at the same longest-path depth are updated in
one step: they share no edge (real or virtual), and everything they read was updated in an earlier step, so the result
is the same with ``2 * depth`` instead of ``2 * N`` sequential steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hyperzoo.graphs.topology import topological_depth

__all__ = ["GatedGNN", "SweepStep", "node_by_node", "sweep_plan"]


@dataclass
class SweepStep:
    """Work of one step of a sweep: the nodes updated together and the messages they receive.

    Messages are summed with two small dense matrices (receiver x edge), which on CPU is much faster than a scatter.
    """

    nodes: Tensor  # [n] nodes updated in this step
    src: Tensor  # [e] sending node of each incoming edge (real and virtual)
    real_src: Tensor  # [r] sending node of each incoming real edge
    real_sum: Tensor  # [n, r] one-hot: which receiver each real-edge message goes to
    ve_sum: Tensor  # [n, e] 1 / s at (receiver, edge): the Eq. 4 weighting of the virtual-edge messages
    real_all: Tensor  # [n, e] one-hot over all edges: real-edge messages, for the fused virtual-edge step

    def to(self, device: torch.device | str) -> SweepStep:
        """The same step on ``device``."""
        fields = (self.nodes, self.src, self.real_src, self.real_sum, self.ve_sum, self.real_all)
        return SweepStep(*(t.to(device) for t in fields))


def sweep_plan(
    num_nodes: int, edge_index: Tensor, edge_dist: Tensor, dtype: torch.dtype = torch.float32
) -> tuple[list[SweepStep], list[SweepStep]]:
    """Groups nodes by topological depth for the forward and the backward sweep.

    Args:
        num_nodes: N.
        edge_index: ``[2, E]`` real and virtual edges (``src`` precedes ``dst``).
        edge_dist: ``[E]`` shortest-path length of each edge (1 = real).
        dtype: of the summation matrices (the node features' dtype, so that ``1 / s`` is exact in float64 too).

    Returns:
        The forward steps (increasing depth, messages along edges) and the backward steps (decreasing depth, messages
        against edges).
    """
    edge_index = edge_index.long()
    real = edge_dist == 1
    depth = topological_depth(num_nodes, edge_index[:, real])
    n_levels = int(depth.max()) + 1 if num_nodes else 0
    node_order = torch.argsort(depth, stable=True)
    node_counts = torch.bincount(depth, minlength=n_levels).tolist()
    levels = list(torch.split(node_order, node_counts))
    slot_of = torch.empty(num_nodes, dtype=torch.long)
    for nodes in levels:
        slot_of[nodes] = torch.arange(len(nodes))
    inv = 1.0 / edge_dist.to(dtype)
    plans: list[list[SweepStep]] = []
    for receiver, sender, reverse in ((1, 0, False), (0, 1, True)):
        level_of_edge = depth[edge_index[receiver]]
        edge_order = torch.argsort(level_of_edge, stable=True)
        per_level = torch.split(edge_order, torch.bincount(level_of_edge, minlength=n_levels).tolist())
        steps = []
        for nodes, e in zip(levels, per_level):
            slot = slot_of[edge_index[receiver, e]]
            ve_sum = torch.zeros(len(nodes), len(e), dtype=dtype)
            ve_sum[slot, torch.arange(len(e))] = inv[e]
            r = real[e]
            real_sum = torch.zeros(len(nodes), int(r.sum()), dtype=dtype)
            real_sum[slot[r], torch.arange(real_sum.shape[1])] = 1.0
            real_all = torch.zeros(len(nodes), len(e), dtype=dtype)
            real_all[slot[r], torch.arange(len(e))[r]] = 1.0
            steps.append(SweepStep(nodes, edge_index[sender, e], edge_index[sender, e[r]], real_sum, ve_sum, real_all))
        plans.append(steps[::-1] if reverse else steps)
    return plans[0], plans[1]


def _mlp(hid: int) -> nn.Sequential:
    """``hid -> hid/2 -> hid`` with a ReLU after both layers (the reference's message MLPs)."""
    return nn.Sequential(nn.Linear(hid, hid // 2), nn.ReLU(), nn.Linear(hid // 2, hid), nn.ReLU())


class GatedGNN(nn.Module):
    """GatedGNN of GHN-1/GHN-2 (Eq. 3-4), depth-batched.

    Args:
        hid: node feature size.
        ve: add the virtual-edge messages ``MLP_ve(h_u) / s`` (GHN-2); without, only real edges carry messages and
            the message MLP is ``hid -> hid -> hid`` (GHN-1).
        T: number of forward+backward rounds.
    """

    def __init__(self, hid: int = 32, ve: bool = True, T: int = 1) -> None:
        super().__init__()
        self.hid, self.ve, self.T = hid, ve, T
        self.message = (
            _mlp(hid) if ve else nn.Sequential(nn.Linear(hid, hid), nn.ReLU(), nn.Linear(hid, hid), nn.ReLU())
        )
        self.virtual_message = _mlp(hid) if ve else None
        self.gru = nn.GRUCell(hid, hid)  # shared by all nodes

    def _step(self, h: Tensor, step: SweepStep) -> Tensor:
        m = step.real_sum.to(h.dtype) @ self.message(h[step.real_src])
        if self.virtual_message is not None:
            m = m + step.ve_sum.to(h.dtype) @ self.virtual_message(h[step.src])
        return h.index_copy(0, step.nodes, self.gru(m, h[step.nodes]))

    def _fused_weights(self) -> tuple[Tensor, ...]:
        """Both message MLPs as one: first layers stacked, second layers block-diagonal (``[2 hid, hid]``)."""
        assert self.virtual_message is not None
        a1, a2 = self.message[0], self.message[2]
        b1, b2 = self.virtual_message[0], self.virtual_message[2]
        w1 = torch.cat([a1.weight, b1.weight])  # type: ignore[list-item]
        bias1 = torch.cat([a1.bias, b1.bias])  # type: ignore[list-item]
        w2 = torch.block_diag(a2.weight, b2.weight)  # type: ignore[arg-type]
        bias2 = torch.cat([a2.bias, b2.bias])  # type: ignore[list-item]
        g = self.gru
        return w1, bias1, w2, bias2, g.weight_ih, g.weight_hh, g.bias_ih, g.bias_hh

    def _fused_step(self, h: Tensor, step: SweepStep, w: tuple[Tensor, ...]) -> Tensor:
        """:meth:`_step` with virtual edges in fewer, larger operations (the same arithmetic).

        Every edge's sender goes through both MLPs at once (the real edges are a subset of all edges), and the
        two weighted sums are one ``addmm``. On CPU the per-step cost is operator overhead, so this roughly halves it.
        """
        hid = self.hid
        z = F.relu(F.linear(h[step.src], w[0], w[1]))
        y = F.relu(F.linear(z, w[2], w[3]))
        m = torch.addmm(step.ve_sum.to(h.dtype) @ y[:, hid:], step.real_all.to(h.dtype), y[:, :hid])
        return h.index_copy(0, step.nodes, torch.gru_cell(m, h[step.nodes], w[4], w[5], w[6], w[7]))

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_dist: Tensor,
        plan: tuple[list[SweepStep], list[SweepStep]] | None = None,
    ) -> Tensor:
        """Updates node features ``x`` ``[N, hid]`` of one graph; returns the new ``[N, hid]``.

        Args:
            x: initial node features.
            edge_index: ``[2, E]`` edges (real and, with ``ve``, virtual).
            edge_dist: ``[E]`` shortest-path lengths (1 = real).
            plan: a precomputed :func:`sweep_plan` (recomputed when ``None``).
        """
        if not self.ve:  # GHN-1: real edges only (a given plan must have been made from them)
            keep = edge_dist == 1
            edge_index, edge_dist = edge_index[:, keep], edge_dist[keep]
        if plan is None:
            plan = sweep_plan(x.shape[0], edge_index.cpu(), edge_dist.cpu(), dtype=x.dtype)
            plan = tuple([s.to(x.device) for s in steps] for steps in plan)  # type: ignore[assignment]
        h = x
        fused = self._fused_weights() if self.virtual_message is not None else None
        for _ in range(self.T):
            for steps in plan:
                for step in steps:
                    h = self._step(h, step) if fused is None else self._fused_step(h, step, fused)
        return h


def node_by_node(gnn: GatedGNN, x: Tensor, edge_index: Tensor, edge_dist: Tensor) -> Tensor:
    """The reference's schedule of the same update: one node per sequential step (``2 N`` steps per round).

    Each step gathers the node's incoming (forward sweep) or outgoing (backward sweep) edges with a mask, as ppuda's
    ``GatedGNN`` does, and applies the message MLPs and the GRU to that node alone. It exists as the baseline of
    ``experiments/bench_ghn.py`` and as the test oracle of :class:`GatedGNN`'s depth-batched schedule.
    """
    if not gnn.ve:
        keep = edge_dist == 1
        edge_index, edge_dist = edge_index[:, keep], edge_dist[keep]
    src, dst = edge_index
    inv = (1.0 / edge_dist.to(x.dtype)).unsqueeze(1)
    real = edge_dist == 1
    h = x
    for _ in range(gnn.T):
        for forward in (True, False):
            receiver, sender = (dst, src) if forward else (src, dst)
            order = range(h.shape[0]) if forward else reversed(range(h.shape[0]))
            for v in order:
                into = receiver == v
                m = gnn.message(h[sender[into & real]]).sum(0, keepdim=True)
                if gnn.virtual_message is not None:
                    m = m + (gnn.virtual_message(h[sender[into]]) * inv[into]).sum(0, keepdim=True)
                h = torch.cat([h[:v], gnn.gru(m, h[v : v + 1]), h[v + 1 :]])
    return h

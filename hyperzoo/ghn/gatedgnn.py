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

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
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
    # The in-place schedule (:meth:`GatedGNN.forward` without autograd) keeps the nodes sorted by depth, so a step's
    # nodes are the rows ``span`` of that order; ``*_pos`` are positions in that order.
    span: tuple[int, int] = (0, 0)
    real_pos: Tensor | None = None  # [r] position of each real edge's sender
    gather_ve: Tensor | None = None  # [r + e] rows of the [2 N, hid] message table: 2 pos (real), 2 pos + 1 (all)
    weights_ve: Tensor | None = None  # [n, r + e] real_sum next to ve_sum: one product sums both messages

    def to(self, device: torch.device | str) -> SweepStep:
        """The same step on ``device``."""
        moved: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            moved[f.name] = v.to(device) if isinstance(v, Tensor) else v
        return SweepStep(**moved)


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
    _add_spans(plans, node_order, node_counts)
    return plans[0], plans[1]


def _add_spans(plans: list[list[SweepStep]], node_order: Tensor, node_counts: list[int]) -> None:
    """Fills the fields of the in-place schedule: each level's rows in depth order and its senders' positions."""
    pos = torch.empty_like(node_order)
    pos[node_order] = torch.arange(len(node_order))
    starts = [0]
    for c in node_counts:
        starts.append(starts[-1] + c)
    levels = torch.split(node_order, node_counts)
    span_of = {int(nodes[0]): (starts[k], starts[k + 1]) for k, nodes in enumerate(levels)}
    for steps in plans:
        for step in steps:
            if len(step.nodes):
                step.span = span_of[int(step.nodes[0])]
            step.real_pos = pos[step.real_src]
            step.gather_ve = torch.cat([2 * step.real_pos, 2 * pos[step.src] + 1])
            step.weights_ve = torch.cat([step.real_sum, step.ve_sum], dim=1)


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
        needs_grad = torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in self.parameters()))
        in_place = x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
        if not needs_grad and in_place and plan[0] and plan[0][0].gather_ve is not None:
            return self._forward_in_place(x, plan)
        h = x
        fused = self._fused_weights() if self.virtual_message is not None else None
        for _ in range(self.T):
            for steps in plan:
                for step in steps:
                    h = self._step(h, step) if fused is None else self._fused_step(h, step, fused)
        return h

    @torch.no_grad()
    def _forward_in_place(self, x: Tensor, plan: tuple[list[SweepStep], list[SweepStep]]) -> Tensor:
        """The same update on CPU without autograd, in NumPy (prediction spends its time here).

        With ``hid = 32`` every operation of a step is tiny, so its cost is the call overhead, about 3x lower in NumPy
        than in torch. Nodes are sorted by depth so that a step's nodes are a slice updated in place. Each node's
        message-MLP outputs are computed once, when the node is updated, into a table that later steps gather from
        (instead of once per outgoing edge), and the GRU's hidden-state gates of all nodes are one product per sweep
        (a node's state does not change within a sweep until its own step). The arithmetic is the same up to
        rounding (``experiments/RESULTS.md``, "GHN speed against the floors").
        """
        hid, ve = self.hid, self.virtual_message is not None
        order = torch.cat([s.nodes for s in plan[0]])
        h = x.index_select(0, order).numpy()
        dtype = h.dtype
        w1, b1, w2, b2 = self._fused_weights()[:4] if ve else _linear_pair(self.message)
        g = self.gru

        def arr(t: Tensor, transpose: bool = False) -> np.ndarray:
            a = t.detach().to(x.dtype).numpy()
            return np.ascontiguousarray(a.T) if transpose else a

        w1t, w2t, w_ih_t, w_hh_t = (arr(w, True) for w in (w1, w2, g.weight_ih, g.weight_hh))
        b1n, b2n, b_ih, b_hh = (arr(b) for b in (b1, b2, g.bias_ih, g.bias_hh))
        table = np.zeros((h.shape[0], 2 * hid if ve else hid), dtype=dtype)  # message-MLP outputs of each node
        rows = table.reshape(-1, hid)
        sweeps: list[list[tuple[tuple[int, int], np.ndarray, np.ndarray]]] = []
        for steps in plan:
            sweep = []
            for s in steps:
                rows_of, weights_of = (s.gather_ve, s.weights_ve) if ve else (s.real_pos, s.real_sum)
                assert rows_of is not None and weights_of is not None
                sweep.append((s.span, rows_of.numpy(), weights_of.numpy().astype(dtype, copy=False)))
            sweeps.append(sweep)
        with np.errstate(over="ignore"):  # exp overflow in the sigmoid gives its limit 0
            for _ in range(self.T):
                for sweep in sweeps:
                    gh = h @ w_hh_t
                    gh += b_hh  # hidden-state gates of every node, as before this sweep
                    for (a, b), gather, weights in sweep:
                        hs, ghs = h[a:b], gh[a:b]
                        if len(gather):
                            gi = (weights @ rows[gather]) @ w_ih_t
                            gi += b_ih
                        else:  # no incoming message: m = 0
                            gi = np.repeat(b_ih[None], b - a, axis=0)
                        rz = gi[:, : 2 * hid]
                        rz += ghs[:, : 2 * hid]
                        np.negative(rz, out=rz)
                        np.exp(rz, out=rz)
                        rz += 1
                        np.reciprocal(rz, out=rz)  # sigmoid: reset and update gates
                        n = gi[:, 2 * hid :]
                        n += rz[:, :hid] * ghs[:, 2 * hid :]
                        np.tanh(n, out=n)
                        hs -= n  # (h - n) z + n, as torch's GRU cell
                        hs *= rz[:, hid:]
                        hs += n
                        y = hs @ w1t
                        y += b1n
                        np.maximum(y, 0, out=y)
                        out = table[a:b]
                        np.matmul(y, w2t, out=out)
                        out += b2n
                        np.maximum(out, 0, out=out)
        h_sorted = torch.from_numpy(h)
        return h_sorted.new_empty(h_sorted.shape).index_copy_(0, order, h_sorted)


def _linear_pair(mlp: nn.Module) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Weights and biases of the two linear layers of a message MLP (``Sequential(Linear, ReLU, Linear, ReLU)``)."""
    first, second = mlp[0], mlp[2]  # type: ignore[index]
    return first.weight, first.bias, second.weight, second.bias


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

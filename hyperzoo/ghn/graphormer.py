"""GHN-3's graph encoder: a Graphormer-style transformer over the nodes of a computation graph.

Knyazev, Hwang, Lacoste-Julien. "Can We Scale Transformers to Predict Parameters of Diverse ImageNet Models?", ICML
2023 (reference code ``SamsungSAILMontreal/ghn3``, ``ghn3/nn.py``: ``GraphormerLayer``, ``MultiHeadSelfAttentionEdges``,
``EdgeEmbedding``). GHN-2's sequential GatedGNN sweep is replaced by dense global self-attention, whose logits carry a
learned bias computed from the matrix of shortest-path distances between the nodes.

For one graph with node features ``x`` (``N x d``) and distance matrix ``D`` (``D[u, v] = s`` when the shortest
directed path ``u -> v`` has length ``s <= s_max``, ``0`` when there is none; ``D`` is upper triangular because the
nodes are in topological order):

1. structural encodings, added once before the first layer:
   ``x_v <- x_v + E_in[min(deg_in(v), 100)] + E_out[min(deg_out(v), 100)] + E_dist[min(D[0, v], 1000)]``,
   with degrees counted over real edges (``D == 1``) and ``D[0, v]`` the distance from the input node;
2. the attention bias, computed once and shared by every layer (the reference computes it inside the first layer and
   hands it on unchanged):
   ``b[h, u, v] = W_2 ReLU(W_1 [E_edge[D[u, v] + 2] ; E_edge[D[v, u] + 2]] + c_1) + c_2``, i.e. the embeddings of
   the forward and of the backward distance are concatenated, so ``b[u, v] != b[v, u]`` (direction-aware);
3. ``L`` pre-LN transformer layers, ``x <- x + MHSA(LN(x), b)``, ``x <- x + FFN(LN(x))``, with
   ``MHSA = W_o concat_h softmax(q_h k_h^T / sqrt(d / H) + b_h) v_h`` (``q, k, v`` projections without bias) and
   ``FFN = Linear(d, 4d) -> GELU -> Linear(4d, d)``.

A batch of graphs is padded to a dense ``[B, N_max, d]`` tensor; padded keys get ``-2**15`` added to their logits
(the reference's value: finite in float16, so a row never becomes ``-inf - (-inf) = NaN``, and ``exp(-2**15)`` is 0).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.utils import to_dense_batch

__all__ = ["MASK_VALUE", "Graphormer", "GraphormerLayer", "sinusoidal_table"]

#: logit offset of padded keys: large enough that ``exp`` underflows to 0, small enough to be finite in float16
MASK_VALUE = -(2.0**15)


def sinusoidal_table(num: int, dim: int) -> Tensor:
    """The Transformer's sinusoidal position table ``[num, dim]``.

    ``T[p, 2j] = sin(p / 10000^(2j / dim))`` and ``T[p, 2j + 1] = cos(p / 10000^(2j / dim))``.
    """
    pos = torch.arange(num, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(num, dim)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return table


class GraphormerLayer(nn.Module):
    """One pre-LN transformer layer whose attention logits receive an additive per-head bias.

    Args:
        hid: feature size ``d``.
        heads: attention heads ``H`` (``d`` must be divisible by ``H``).
        mlp_ratio: hidden width of the feed-forward block, as a multiple of ``d``.
    """

    def __init__(self, hid: int, heads: int = 8, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        if hid % heads:
            raise ValueError(f"hid={hid} is not divisible by heads={heads}")
        self.heads = heads
        self.ln1 = nn.LayerNorm(hid)
        self.qkv = nn.Linear(hid, 3 * hid, bias=False)
        self.out = nn.Linear(hid, hid)
        self.ln2 = nn.LayerNorm(hid)
        ffn_hid = int(hid * mlp_ratio)
        self.ffn = nn.Sequential(nn.Linear(hid, ffn_hid), nn.GELU(), nn.Linear(ffn_hid, hid))

    def forward(self, x: Tensor, attn_bias: Tensor) -> Tensor:
        """Updates ``x``.

        Args:
            x: ``[B, N, d]`` node features.
            attn_bias: ``[B, H, N, N]`` additive logit bias (structure bias plus padding mask), row = query.

        Returns:
            ``[B, N, d]``.
        """
        b, n, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias.to(q.dtype))  # scale 1/sqrt(d/H)
        x = x + self.out(a.transpose(1, 2).reshape(b, n, d))
        return x + self.ffn(self.ln2(x))


class Graphormer(nn.Module):
    """GHN-3's encoder: structural encodings, a distance-based attention bias and ``layers`` transformer layers.

    Graphs come as a PyG-style batch (concatenated nodes, global edge ids, ``ptr`` offsets) and leave in the same row
    order; internally the batch is padded to ``[B, N_max, d]``, so time and memory grow as ``B * N_max^2``.

    Names differ from the reference's state dict (``ghn3/nn.py``; there the layers are ``gnn.<i>``); the map is:

    ==========================================  ==========================================
    reference                                   here
    ==========================================  ==========================================
    ``centrality_embed_in`` / ``_out``          ``degree_in_embed`` / ``degree_out_embed``
    ``input_dist_embed``                        ``input_dist_embed``
    ``gnn.0.attn.edge_embed.embed``             ``edge_embed``
    ``gnn.0.attn.proj_e.{0,2}``                 ``edge_proj.{0,2}``
    ``gnn.<i>.ln1`` / ``ln2``                   ``layers.<i>.ln1`` / ``ln2``
    ``gnn.<i>.attn.to_qkv``                     ``layers.<i>.qkv``
    ``gnn.<i>.attn.to_out.0``                   ``layers.<i>.out``
    ``gnn.<i>.ff.net.{0,3}``                    ``layers.<i>.ffn.{0,2}``
    ==========================================  ==========================================

    Initialisation: linear and layer-norm layers keep PyTorch's defaults (as the reference), the degree and
    input-distance tables are truncated normal with std ``d^-1/2`` (the reference's ``GHN3._init_embed``), and the
    edge table starts from :func:`sinusoidal_table` (the reference's ``EdgeEmbedding``; note that ``GHN3.__init__``
    then re-draws *every* ``nn.Embedding``, this one included, from the truncated normal, so a GHN-3 built on this
    class that wants the reference's effective initialisation should do the same).

    Args:
        hid: feature size ``d``.
        layers: transformer layers ``L``.
        heads: attention heads ``H``.
        mlp_ratio: feed-forward width as a multiple of ``d``.
        max_degree: in/out degrees are clipped to this value (the tables have ``max_degree + 1`` rows).
        max_input_dist: distances from the input node are clipped to this value (``max_input_dist + 1`` rows).
        max_edge_dist: rows of the edge-distance table; distance ``s`` uses row ``s + 2`` (rows 0 and 1 are never
            read, as in the reference), so distances up to ``max_edge_dist - 3`` are distinguished and longer ones
            share the last row (the reference does not clip: longer ones would fail there).
    """

    def __init__(
        self,
        hid: int,
        layers: int = 3,
        heads: int = 8,
        mlp_ratio: float = 4.0,
        max_degree: int = 100,
        max_input_dist: int = 1000,
        max_edge_dist: int = 257,
    ) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"layers must be >= 1, got {layers}")
        if max_edge_dist < 3:
            raise ValueError(f"max_edge_dist must be >= 3 (rows 0 and 1 are unused), got {max_edge_dist}")
        self.hid, self.heads = hid, heads
        self.max_degree, self.max_input_dist, self.max_edge_dist = max_degree, max_input_dist, max_edge_dist
        self.degree_in_embed = nn.Embedding(max_degree + 1, hid)
        self.degree_out_embed = nn.Embedding(max_degree + 1, hid)
        self.input_dist_embed = nn.Embedding(max_input_dist + 1, hid)
        self.edge_embed = nn.Embedding(max_edge_dist, hid)
        self.edge_proj = nn.Sequential(nn.Linear(2 * hid, hid), nn.ReLU(), nn.Linear(hid, heads))
        self.layers = nn.ModuleList(GraphormerLayer(hid, heads, mlp_ratio) for _ in range(layers))
        for table in (self.degree_in_embed, self.degree_out_embed, self.input_dist_embed):
            nn.init.trunc_normal_(table.weight, std=hid**-0.5)
        with torch.no_grad():
            self.edge_embed.weight.copy_(sinusoidal_table(max_edge_dist, hid))

    # ------------------------------------------------------------------ structure
    def structural_encoding(self, edge_index: Tensor, edge_dist: Tensor, ptr: Tensor, num_nodes: int) -> Tensor:
        """Sum of the in-degree, out-degree and distance-from-input embeddings of every node, ``[N_total, d]``.

        Degrees count real edges (distance 1). The distance from the input is the distance of the edge from the
        graph's first node ``ptr[b]`` to the node (0 for the input itself and for nodes farther than ``s_max``).
        """
        src, dst = edge_index
        real = edge_dist == 1
        deg_in = torch.bincount(dst[real], minlength=num_nodes).clamp_(max=self.max_degree)
        deg_out = torch.bincount(src[real], minlength=num_nodes).clamp_(max=self.max_degree)
        is_input = torch.zeros(num_nodes, dtype=torch.bool, device=src.device)
        is_input[ptr[:-1]] = True
        from_input = is_input[src]
        input_dist = torch.zeros(num_nodes, dtype=torch.long, device=src.device)
        input_dist[dst[from_input]] = edge_dist[from_input].long()
        input_dist.clamp_(max=self.max_input_dist)
        return self.degree_in_embed(deg_in) + self.degree_out_embed(deg_out) + self.input_dist_embed(input_dist)

    def attention_bias(self, dist: Tensor) -> Tensor:
        """Per-head logit bias ``[B, H, N, N]`` from the dense distance matrix ``dist`` ``[B, N, N]`` (0 = none).

        ``bias[b, :, u, v] = edge_proj([E[dist[b, u, v] + 2] ; E[dist[b, v, u] + 2]])``. The MLP is evaluated once
        per distinct ``(forward, backward)`` pair, which is exact (the MLP acts on each pair independently) and
        turns ``B N^2`` evaluations into about ``2 s_max + 1`` (in a DAG at most one direction is non-zero).
        """
        pair = torch.stack((dist, dist.transpose(1, 2)), dim=-1).add(2).clamp_(max=self.max_edge_dist - 1)
        code = pair[..., 0] * self.max_edge_dist + pair[..., 1]
        uniq, inverse = torch.unique(code, return_inverse=True)
        uniq_pair = torch.stack((uniq // self.max_edge_dist, uniq % self.max_edge_dist), dim=-1)  # [U, 2]
        table = self.edge_proj(self.edge_embed(uniq_pair).flatten(1))  # [U, 2d] -> [U, H]
        return table[inverse].permute(0, 3, 1, 2)  # [B, N, N, H] -> [B, H, N, N]

    # ------------------------------------------------------------------ forward
    def forward(self, x: Tensor, edge_index: Tensor, edge_dist: Tensor, ptr: Tensor) -> Tensor:
        """Encodes a batch of disjoint graphs.

        Args:
            x: ``[N_total, d]`` node features, the graphs' nodes concatenated.
            edge_index: ``[2, E]`` global node ids of real and virtual edges (``src`` before ``dst`` in topological
                order), never between two graphs.
            edge_dist: ``[E]`` shortest directed path length of each edge (1 = real, ``2..s_max`` = virtual).
            ptr: ``[B + 1]`` node offsets: graph ``b`` owns nodes ``ptr[b]:ptr[b + 1]``, its input node is ``ptr[b]``.

        Returns:
            ``[N_total, d]`` node embeddings, rows in the order of ``x``.
        """
        n_total = x.shape[0]
        ptr = ptr.to(x.device).long()
        edge_index = edge_index.to(x.device).long()
        edge_dist = edge_dist.to(x.device).long()
        counts = ptr.diff()
        num_graphs = counts.numel()
        batch = torch.repeat_interleave(torch.arange(num_graphs, device=x.device), counts, output_size=n_total)
        n_max = int(counts.max()) if num_graphs else 0

        x = x + self.structural_encoding(edge_index, edge_dist, ptr, n_total)
        dense, mask = to_dense_batch(x, batch, batch_size=num_graphs, max_num_nodes=n_max)  # padded rows are 0

        local = torch.arange(n_total, device=x.device) - ptr[batch]
        src, dst = edge_index
        dist = torch.zeros(num_graphs, n_max, n_max, dtype=torch.long, device=x.device)
        dist[batch[src], local[src], local[dst]] = edge_dist

        bias = self.attention_bias(dist)
        pad = torch.zeros(mask.shape, dtype=bias.dtype, device=x.device).masked_fill_(~mask, MASK_VALUE)
        bias = bias + pad[:, None, None, :]  # padded keys, for every head and query
        for layer in self.layers:
            dense = layer(dense, bias)
        return dense[mask]

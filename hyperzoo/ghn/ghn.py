"""Graph hypernetworks: one class, :class:`GHN`, configured as GHN-1, GHN-2, the MLP baseline or GHN-3.

Knyazev, Drozdzal, Taylor, Romero-Soriano. "Parameter Prediction for Unseen Deep Architectures", NeurIPS 2021
(GHN-1/GHN-2/MLP, reference code ``facebookresearch/ppuda``); Knyazev, Hwang, Lacoste-Julien. "Can We Scale
Transformers to Predict Parameters of Diverse ImageNet Models?", ICML 2023 (GHN-3, ``SamsungSAILMontreal/ghn3``).

Pipeline for a batch of graphs (one pass for all of them):

1. ``h^0_v = E_op[op_v] + E_shape(shape_v)`` (:class:`ShapeEncoder`);
2. the encoder: GHN-2's GatedGNN with virtual edges (:class:`GatedGNN`; GHN-1 without them), GHN-3's Graphormer
   layers, or a per-node MLP (the "MLP" baseline, which sees no edges); then LayerNorm (``layernorm``);
3. per node, a decoder by parameter kind, one call per kind for the whole batch: the convolutional decoder for
   2-D/4-D weights (its class head for the classifier weight), ``decoder_1d`` for 1-D tensors (a normalization
   node gives weight and bias), ``bias_class`` on top of ``decoder_1d`` for the classifier bias;
4. slicing/tiling to the real shape (:func:`tile_to_shape`) and operation-dependent normalization
   (``weight_norm``, :func:`normalize_parameter`).

Shapes beyond the decoder's ``max_shape`` are tiled: a ``512 x 256 x 3 x 3`` weight predicted as ``64 x 64 x 3 x 3``
is that block repeated ``8 x 4`` times; kernels larger than the decoded ``s x s`` are repeated spatially by GHN-2's
decoder and interpolated by GHN-3's.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch

from hyperzoo.errors import ConfigError, HyperzooError
from hyperzoo.ghn.decoder import ConvDecoder, normalize_parameter, tile_into, tile_to_shape
from hyperzoo.ghn.gatedgnn import GatedGNN
from hyperzoo.ghn.shape_encoder import ShapeEncoder
from hyperzoo.ghn.unpredicted import check_unmapped, report_unpredicted
from hyperzoo.graphs.arch_graph import ArchGraph, as_graph_list, batch_graphs
from hyperzoo.graphs.sharing import first_uses
from hyperzoo.graphs.vocabulary import NUM_REFERENCE_PRIMITIVES, OP_ID, PRIMITIVES
from hyperzoo.hypernets.functional import install_parameters, set_norm_statistics

__all__ = ["GHN", "GHN2", "NodeMLP", "UnpredictableLayerError"]

NUM_PRIMITIVES = NUM_REFERENCE_PRIMITIVES  # kept for older imports
_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)
HYPERNETS = ("gatedgnn", "mlp", "graphormer")
DECODERS = ("conv", "conv3")


class UnpredictableLayerError(HyperzooError):
    """A network has parameters whose op the GHN has no embedding for."""


class NodeMLP(nn.Module):
    """The "MLP" baseline encoder: ``hid -> hid -> hid`` per node with ReLUs, no message passing."""

    def __init__(self, hid: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(hid, hid), nn.ReLU(), nn.Linear(hid, hid), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(x)


class GHN(nn.Module):
    """A graph hypernetwork (GHN-2 by default; :data:`hyperzoo.ghn.GHNS` names the other configurations).

    Args:
        hid: node feature size.
        max_shape: largest decoded tensor ``(out, in, k, k)``.
        num_classes: classes of the dataset the GHN predicts classifiers for.
        hypernet: the encoder: ``"gatedgnn"`` (GHN-1/2), ``"graphormer"`` (GHN-3) or ``"mlp"`` (no edges).
        decoder: ``"conv"`` (GHN-2's decoder, top-left crops) or ``"conv3"`` (GHN-3's, centre crops).
        ve: virtual edges up to ``s_max`` (GatedGNN: the Eq. 4 messages; Graphormer: the distance biases).
        layernorm: LayerNorm on the node embeddings after the encoder.
        weight_norm: operation-dependent normalization of predicted parameters.
        s_max: longest shortest path used as a virtual edge.
        num_ops: rows of the op embedding: 15 (the reference vocabulary, what its checkpoints have) or up to
            ``len(PRIMITIVES)`` to also embed hyperzoo's extension ops (layer scale, class tokens, ...).
        layers, heads: Graphormer depth and attention heads (``hypernet="graphormer"`` only).
        graph_rules: how graphs of networks are built for this GHN (:mod:`hyperzoo.graphs.rules`): ``"ghn2"`` (the
            reference GHN-2's graphs), ``"hyperzoo"`` (with hyperzoo's extension ops) or ``"ghn3"`` (the reference
            GHN-3's graphs; set by :func:`~hyperzoo.ghn.reference_ghn3.load_reference_ghn3`). Default: ``"ghn2"``
            for the reference vocabulary (``num_ops=15``), ``"hyperzoo"`` beyond it. Saved with the config.
    """

    def __init__(
        self,
        hid: int = 32,
        max_shape: Sequence[int] = (64, 64, 11, 11),
        num_classes: int = 10,
        hypernet: str = "gatedgnn",
        decoder: str = "conv",
        ve: bool = True,
        layernorm: bool = True,
        weight_norm: bool = True,
        s_max: int = 50,
        num_ops: int = NUM_REFERENCE_PRIMITIVES,
        layers: int = 3,
        heads: int = 8,
        graph_rules: str | None = None,
    ) -> None:
        super().__init__()
        from hyperzoo.graphs.rules import check_rules, default_rules

        self.graph_rules = check_rules(graph_rules) if graph_rules is not None else default_rules(num_ops)
        if len(max_shape) != 4:
            raise ConfigError(f"max_shape must have 4 entries (out, in, k, k), got {tuple(max_shape)}")
        if hypernet not in HYPERNETS:
            raise ConfigError(f"hypernet must be one of {HYPERNETS}, got {hypernet!r}")
        if decoder not in DECODERS:
            raise ConfigError(f"decoder must be one of {DECODERS}, got {decoder!r}")
        if not NUM_REFERENCE_PRIMITIVES <= num_ops <= len(PRIMITIVES):
            raise ConfigError(f"num_ops must be in [{NUM_REFERENCE_PRIMITIVES}, {len(PRIMITIVES)}], got {num_ops}")
        if hid % 4:
            raise ConfigError(f"hid must be a multiple of 4 (four shape embeddings of hid/4), got {hid}")
        o, i, kh, kw = (int(v) for v in max_shape)
        self.hid, self.num_classes, self.num_ops = int(hid), int(num_classes), int(num_ops)
        self.max_shape: tuple[int, int, int, int] = (o, i, kh, kw)
        self.hypernet, self.decoder_kind = hypernet, decoder
        self.ve, self.layernorm, self.weight_norm = bool(ve), bool(layernorm), bool(weight_norm)
        self.s_max = int(s_max) if ve else 1
        self.layers, self.heads = int(layers), int(heads)
        self.epoch: int | None = None  # training epoch of a loaded checkpoint
        self.op_embed = nn.Embedding(num_ops, hid)
        self.shape_encoder = ShapeEncoder(hid, num_classes, self.max_shape)
        self.gnn: nn.Module
        if hypernet == "gatedgnn":
            self.gnn = GatedGNN(hid, ve=ve)
        elif hypernet == "mlp":
            self.gnn = NodeMLP(hid)
        else:
            from hyperzoo.ghn.graphormer import Graphormer

            self.gnn = Graphormer(hid, layers=layers, heads=heads)
        self.node_norm = nn.LayerNorm(hid) if layernorm else None
        if decoder == "conv":
            self.decoder: nn.Module = ConvDecoder(hid, (4 * hid, 8 * hid), self.max_shape, num_classes)
        else:
            from hyperzoo.ghn.decoder3 import ConvDecoder3

            self.decoder = ConvDecoder3(hid, (4 * hid, 8 * hid), self.max_shape, num_classes)
        max_ch = max(self.max_shape[:2])
        self.decoder_1d = nn.Sequential(nn.Linear(hid, 2 * hid), nn.ReLU(), nn.Linear(2 * hid, 2 * max_ch))
        self.bias_class = nn.Linear(max_ch, num_classes)  # applied after a ReLU

    @property
    def config(self) -> dict[str, Any]:
        """The constructor arguments: ``GHN(**ghn.config)`` rebuilds this architecture."""
        return {
            "hid": self.hid,
            "max_shape": list(self.max_shape),
            "num_classes": self.num_classes,
            "hypernet": self.hypernet,
            "decoder": self.decoder_kind,
            "ve": self.ve,
            "layernorm": self.layernorm,
            "weight_norm": self.weight_norm,
            "s_max": self.s_max if self.ve else 50,
            "num_ops": self.num_ops,
            "layers": self.layers,
            "heads": self.heads,
            "graph_rules": self.graph_rules,
        }

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config.items())

    # ------------------------------------------------------------------ networks -> graphs
    def graph(
        self,
        model: nn.Module,
        input_size: int | tuple[int, ...] | None = None,
        name: str | None = None,
        allow_unpredicted: bool = False,
    ) -> ArchGraph:
        """The graph of ``model`` built with this GHN's :attr:`graph_rules` (what :meth:`predict_batch` builds).

        A parameter without a node is an error while building (GHN-2 rules) or before predicting (GHN-3 rules,
        whose reference leaves class tokens and layer scales without one), unless ``allow_unpredicted``.
        """
        from hyperzoo.graphs.rules import build_graph

        kwargs = {} if self.graph_rules == "ghn3" else {"strict": not allow_unpredicted}
        return build_graph(model, self.graph_rules, input_size=input_size, s_max=self.s_max, name=name, **kwargs)

    # ------------------------------------------------------------------ graphs -> node embeddings
    def embed_nodes(self, graphs: ArchGraph | Sequence[ArchGraph] | Batch, skip_unknown: bool = False) -> Tensor:
        """Node embeddings ``[sum N, hid]`` of one graph or a batch of graphs (in order), after the encoder.

        Args:
            graphs: one graph, a PyG :class:`~torch_geometric.data.Batch` of graphs
                (:func:`~hyperzoo.graphs.arch_graph.batch_graphs`), or a sequence of graphs (batched here, once).
            skip_unknown: embed nodes whose op the GHN has no row for by their shape only, instead of raising
                :class:`UnpredictableLayerError`.
        """
        if isinstance(graphs, ArchGraph):  # one graph, or a Batch (also an ArchGraph): its nodes and edges as they are
            batch = graphs
        else:
            graph_list = list(graphs)
            if not graph_list:
                raise HyperzooError("embed_nodes: no graphs given")
            # one graph is its own batch: no copy (0.06 ms against 1.1 ms for a Batch of one, ResNet-50,
            # experiments/bench_graph_batching.py) and it keeps its cached sweep plan
            batch = graph_list[0] if len(graph_list) == 1 else batch_graphs(graph_list)
        device = self.op_embed.weight.device
        op = batch.op.to(device)
        shape = batch.shape.to(device)
        known = op < self.num_ops
        if not bool(known.all()):
            if not skip_unknown:
                raise UnpredictableLayerError(self._unknown_message(as_graph_list(batch)))
            x = self.op_embed(torch.where(known, op, 0)) * known.unsqueeze(1)
        else:
            x = self.op_embed(op)
        x = self.shape_encoder(x, shape, shape.abs().sum(dim=1) > 0)
        if self.hypernet == "mlp":
            x = self.gnn(x)
        else:
            edge_index, edge_dist = batch.edge_index.long(), batch.edge_dist
            keep = edge_dist <= self.s_max  # virtual edges up to this GHN's s_max
            if not bool(keep.all()):
                edge_index, edge_dist = edge_index[:, keep], edge_dist[keep]
            if self.hypernet == "gatedgnn":
                plan = _sweep_plan(batch, edge_index, edge_dist, self.s_max, self.ve, device, x.dtype)
                x = self.gnn(x, edge_index.to(device), edge_dist.to(device), plan)
            else:
                ptr = batch.ptr if isinstance(batch, Batch) else torch.tensor([0, int(batch.num_nodes)])
                x = self.gnn(x, edge_index.to(device), edge_dist.to(device), ptr.to(device))
        return self.node_norm(x) if self.node_norm is not None else x

    def _unknown_message(self, graphs: Sequence[ArchGraph]) -> str:
        names: list[str] = []
        ops: set[str] = set()
        for g in graphs:
            for v in (g.op >= self.num_ops).nonzero().flatten().tolist():
                names.append(g.param_names[v] or f"node {v}")
                ops.add(PRIMITIVES[int(g.op[v])] if int(g.op[v]) < len(PRIMITIVES) else str(int(g.op[v])))
        shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        return (
            f"this GHN embeds {self.num_ops} op types and cannot predict ops {sorted(ops)} (parameters {shown}); "
            "pass allow_unpredicted=True (or skip_unknown=True) to predict everything else and leave "
            "these at their current values, "
            f"or use a GHN trained with num_ops={len(PRIMITIVES)}"
        )

    # ------------------------------------------------------------------ prediction
    def predict_parameters(
        self,
        model_or_graph: nn.Module | ArchGraph,
        model: nn.Module | None = None,
        skip_unknown: bool = False,
        allow_unpredicted: bool = False,
    ) -> dict[str, Tensor]:
        """Predicts every parameter of one network that has a node in its graph.

        Args:
            model_or_graph: a network (its graph is built with :func:`graph_from_module`) or its :class:`ArchGraph`.
            model: the network when a graph is given (it supplies the real parameter shapes and the module types).
            skip_unknown: see :meth:`predict_batch`.
            allow_unpredicted: see :meth:`predict_batch`.

        Returns:
            ``{parameter name: tensor}`` in the network's shapes, still attached to the GHN's autograd graph. A
            normalization node gives both its weight and its bias.
        """
        if isinstance(model_or_graph, ArchGraph):
            if model is None:
                raise HyperzooError("predict_parameters(graph) needs the network too: predict_parameters(graph, model)")
            return self.predict_batch(
                [model], [model_or_graph], skip_unknown=skip_unknown, allow_unpredicted=allow_unpredicted
            )[0]
        return self.predict_batch([model_or_graph], skip_unknown=skip_unknown, allow_unpredicted=allow_unpredicted)[0]

    def predict_batch(
        self,
        models: Sequence[nn.Module],
        graphs: Sequence[ArchGraph] | Batch | None = None,
        skip_unknown: bool = False,
        allow_unpredicted: bool = False,
    ) -> list[dict[str, Tensor]]:
        """Predicts the parameters of many networks in one pass (one encoder call, one decoder call per kind).

        Args:
            models: the networks (used for parameter shapes and module types; their values are not read).
            graphs: their graphs, a list or a :class:`~torch_geometric.data.Batch` (built with
                :func:`graph_from_module` where ``None``).
            skip_unknown: leave parameters whose op the GHN cannot embed out of the result (with a warning)
                instead of raising :class:`UnpredictableLayerError` (the same as ``allow_unpredicted``).
            allow_unpredicted: leave every parameter the GHN cannot predict (unknown ops, parameters without a
                graph node) out of the result, with a warning giving their count and names, instead of raising
                (:mod:`hyperzoo.ghn.unpredicted`).

        A parameter with several nodes (weight sharing) is predicted once, from its first node
        (:mod:`hyperzoo.graphs.sharing`).

        Returns:
            One ``{parameter name: tensor}`` per network, attached to the GHN's autograd graph.

        Raises:
            UnpredictableLayerError: ops the GHN cannot embed, unless allowed.
            UnpredictedParametersError: parameters without a graph node, unless allowed.
        """
        blocks = self._predict_blocks(models, graphs, skip_unknown, allow_unpredicted)
        return [{name: self._tile(w, shape) for name, (w, shape) in pred.items()} for pred in blocks]

    def _predict_blocks(
        self,
        models: Sequence[nn.Module],
        graphs: Sequence[ArchGraph] | Batch | None = None,
        skip_unknown: bool = False,
        allow_unpredicted: bool = False,
    ) -> list[dict[str, tuple[Tensor, torch.Size]]]:
        """:meth:`predict_batch` before tiling: ``{name: (normalized predicted block, parameter shape)}`` per network.

        Tiling repeats the block up to the parameter's shape, so :meth:`forward` can write it straight into the
        parameter (:func:`tile_into`) instead of materializing the full tensor first.
        """
        allow = allow_unpredicted or skip_unknown
        models = list(models)
        graph_list = self._graphs_of(models, graphs, allow)
        check_unmapped(graph_list, allow)
        x = self.embed_nodes(graphs if isinstance(graphs, Batch) else graph_list, skip_unknown=allow)
        all_params = [dict(m.named_parameters()) for m in models]
        jobs = self._decoder_jobs(graph_list, all_params)
        out: list[dict[str, tuple[Tensor, torch.Size]]] = [{} for _ in models]
        modules = [dict(m.named_modules()) for m in models]
        for kind, items in jobs.items():
            pred = self._decode(kind, x[torch.tensor([r for _, _, r in items], device=x.device)])
            # unbind, not pred[j]: its backward stacks the items' gradients once, where each pred[j]'s backward
            # would zero-fill and add a gradient of the whole group (quadratic in the group size)
            self._place(kind, pred.unbind(0), items, graph_list, all_params, modules, out)
        if not self.training:  # inference: NaN/inf weights must not pass as a prediction (one sync)
            check_finite_predictions([{k: w for k, (w, _) in p.items()} for p in out], graph_list)
        report_unpredicted(models, out, allow, graph_list)
        return out

    def _graphs_of(
        self, models: list[nn.Module], graphs: Sequence[ArchGraph] | Batch | None, allow: bool
    ) -> list[ArchGraph]:
        """The given graphs (checked against this GHN's graph rules), or the models' graphs built with them."""
        if graphs is None:
            return [self.graph(m, allow_unpredicted=allow) for m in models]
        graph_list = as_graph_list(graphs)
        if len(graph_list) != len(models):
            raise HyperzooError(f"predict_batch: {len(models)} networks but {len(graph_list)} graphs")
        from hyperzoo.graphs.rules import check_compatible

        for g in graph_list:
            check_compatible(g, self.graph_rules)
        return graph_list

    def _decoder_jobs(
        self, graph_list: list[ArchGraph], all_params: Sequence[Mapping[str, Tensor]]
    ) -> dict[Any, list[tuple[int, int, int]]]:
        """``{decoder kind: [(graph, local node, row of the batched node embeddings)]}`` of the nodes to decode.

        A node is decoded where it is the first use of its parameter (:func:`first_uses`) and its op is embedded.
        """
        jobs: dict[Any, list[tuple[int, int, int]]] = defaultdict(list)
        offset = 0
        for b, (graph, params) in enumerate(zip(graph_list, all_params)):
            n = int(graph.num_nodes)
            has_param = graph.has_param.tolist()
            ops = graph.op.tolist()
            first = first_uses(list(graph.param_names), has_param)  # tied uses of a shared weight: the first
            for v, name in enumerate(graph.param_names):
                if not first[v] or not name:  # no parameter, a later use of a tied one, or a shape-only node
                    continue
                if name not in params:
                    raise HyperzooError(
                        f"graph {graph.name!r} node {v} names parameter {name!r}, which the network does not have; "
                        "was the graph built from another architecture?"
                    )
                if ops[v] >= self.num_ops:
                    continue  # allowed by now (embed_nodes raised otherwise); reported by report_unpredicted
                shape = params[name].shape
                if self.graph_rules == "ghn3" and len(shape) == 3 and shape[0] == 1 and min(shape[1:]) > 1:
                    jobs[("pos", math.isqrt(int(shape[1])))].append((b, v, offset + v))
                    continue
                jobs[self._kind(v, n, name, shape)].append((b, v, offset + v))
            offset += n
        return jobs

    def _decode(self, kind: Any, xs: Tensor) -> Tensor:
        """One decoder call for all the node embeddings ``xs`` of one kind (:meth:`_kind`)."""
        if kind == "cls_w":
            return self.decoder(xs, class_pred=True)
        if kind[0] == "pos":  # GHN-3's ViT positional embedding: one output channel, s x s tokens
            return self.decoder(xs, (kind[1], kind[1]))[:, :1]
        if kind in ("1d", "cls_b"):
            pred = self.decoder_1d(xs).view(len(xs), 2, -1)
            return self.bias_class(torch.relu(pred)) if kind == "cls_b" else pred
        return self.decoder(xs, kind[1:])

    def _place(
        self,
        kind: Any,
        per_node: Sequence[Tensor],
        items: list[tuple[int, int, int]],
        graph_list: list[ArchGraph],
        all_params: Sequence[Mapping[str, Tensor]],
        modules: list[dict[str, nn.Module]],
        out: list[dict[str, tuple[Tensor, torch.Size]]],
    ) -> None:
        """Normalizes the decoded blocks of one kind and files them as ``out[graph][name] = (block, shape)``.

        A normalization node also gives its module's bias when the bias has no node of its own.
        """
        for j, (b, v, _) in enumerate(items):
            params, name = all_params[b], graph_list[b].param_names[v]
            target = params[name].shape
            if kind[0] == "pos":
                from hyperzoo.ghn.decoder3 import tile_pos_embedding

                w = tile_pos_embedding(per_node[j], target)
                out[b][name] = (normalize_parameter(w, True, target) if self.weight_norm else w, target)
            elif kind in ("1d", "cls_b"):
                is_weight = not name.endswith("bias")
                out[b][name] = (self._normalize(per_node[j][0 if is_weight else 1], target, is_weight), target)
                module_name, _, leaf = name.rpartition(".")
                bias_name = f"{module_name}.bias" if module_name else "bias"
                if (
                    is_weight
                    and leaf == "weight"
                    and (isinstance(modules[b].get(module_name), _NORM_TYPES) or is_norm_node(graph_list[b], v))
                    and bias_name in params
                    and bias_name not in graph_list[b].param_names
                ):
                    bias_shape = params[bias_name].shape
                    out[b][bias_name] = (self._normalize(per_node[j][1], bias_shape, False), bias_shape)
            else:
                w = per_node[j]
                if kind == "cls_w":
                    w = w.reshape(w.shape + (1,) * (len(target) - 2)) if len(target) > 2 else w
                elif len(target) < 4 and self.decoder_kind == "conv":  # GHN-3's tiling indexes the centre
                    w = w[(slice(None), slice(None)) + (0,) * (4 - max(len(target), 2))]
                out[b][name] = (self._normalize(w, target, True), target)

    @staticmethod
    def _kind(v: int, n: int, name: str, shape: torch.Size) -> Any:
        """Decoder group of node ``v``: the classifier is the weight node second to last / the bias node last."""
        if len(shape) <= 1:  # a scalar is decoded as a vector of one
            return "cls_b" if (v == n - 1 and name.endswith(".bias")) else "1d"
        if v == n - 2 and name.endswith(".weight"):
            return "cls_w"
        spatial = tuple(shape[2:4]) if len(shape) >= 4 else ((shape[2], 1) if len(shape) == 3 else (1, 1))
        return ("4d", int(spatial[0]), int(spatial[1]))

    def _finish(self, w: Tensor, shape: torch.Size, is_weight: bool) -> Tensor:
        """A decoded block as the parameter: normalized (:meth:`_normalize`), then tiled (:meth:`_tile`)."""
        return self._tile(self._normalize(w, shape, is_weight), shape)

    def _normalize(self, w: Tensor, shape: torch.Size, is_weight: bool) -> Tensor:
        """Normalization of a decoded block; elementwise given the target shape, so it may come before tiling."""
        if not self.weight_norm:
            return w
        return normalize_parameter(w, is_weight, shape if len(shape) else torch.Size([1]))  # a scalar: as [1]

    def _tile(self, w: Tensor, shape: torch.Size) -> Tensor:
        if len(shape) == 0:  # a scalar parameter (a temperature, an affine scale): the first entry
            return self._tile(w, torch.Size([1])).reshape(())
        if self.decoder_kind == "conv3" and w.dim() >= len(shape):
            from hyperzoo.ghn.decoder3 import tile_to_shape_centered

            return tile_to_shape_centered(w, shape)
        return tile_to_shape(w, shape)

    def _tile_into(self, param: Tensor, w: Tensor) -> None:
        """Writes the tiled block ``w`` into ``param`` (one pass, no full-size temporary where it can)."""
        if self.decoder_kind == "conv" and w.dim() == param.dim():
            tile_into(param, w)
        else:
            param.copy_(self._tile(w, param.shape))

    # ------------------------------------------------------------------ the reference's ghn(model)
    def forward(
        self,
        model: nn.Module | Sequence[nn.Module],
        graph: ArchGraph | Sequence[ArchGraph] | None = None,
        bn_train: bool = True,
        skip_unknown: bool = False,
        allow_unpredicted: bool = False,
    ) -> Any:
        """Sets the parameters of ``model`` (or of each model of a list) to the predicted ones; returns it/them.

        In training mode the predicted tensors replace the parameters (gradients flow to the GHN); in eval mode their
        values are copied into the existing parameters (a model on the ``meta`` device gets new ones); tied
        parameters stay tied (:func:`~hyperzoo.hypernets.functional.install_parameters`). With ``bn_train``
        batch-norm layers use batch statistics, as the reference evaluates, since running statistics are not
        predicted (:func:`~hyperzoo.hypernets.functional.set_norm_statistics`).

        Every parameter is predicted or this raises (:mod:`hyperzoo.ghn.unpredicted`); ``allow_unpredicted=True``
        (or ``skip_unknown=True``) leaves those the GHN cannot predict at their values, with a warning.
        """
        single = isinstance(model, nn.Module)
        models = [model] if isinstance(model, nn.Module) else list(model)
        graphs: Sequence[ArchGraph] | Batch | None = None
        if isinstance(graph, Batch):  # a Batch is an ArchGraph too: it holds one graph per model
            graphs = graph
        elif graph is not None:
            graphs = [graph] if isinstance(graph, ArchGraph) else list(graph)
        preds = self._predict_blocks(models, graphs, skip_unknown=skip_unknown, allow_unpredicted=allow_unpredicted)
        for net, pred in zip(models, preds):
            blocks = {name: block for name, (block, _) in pred.items()}
            # training: the tiled tensors themselves (gradients reach the GHN); eval: tiled into the parameters
            install_parameters(net, blocks, keep_graph=self.training, expand=self._tile, write=self._tile_into)
            if bn_train:
                set_norm_statistics(net, "batch")
        return models[0] if single else models


GHN2 = GHN  # the default configuration is GHN-2


def check_finite_predictions(preds: Sequence[dict[str, Tensor]], graphs: Sequence[ArchGraph]) -> None:
    """Raises :class:`HyperzooError` naming the first predicted tensor with NaN or infinite values.

    Fast path: NaN and infinity propagate through sums, so one reduction per tensor and one synchronisation decide
    that all is finite; only then (or on a sum that overflowed) is each tensor checked exactly.
    """
    flat = [t for p in preds for t in p.values() if t.numel()]
    if not flat or bool(torch.isfinite(torch.stack([t.detach().sum(dtype=torch.float32) for t in flat])).all()):
        return
    for p, g in zip(preds, graphs):
        for name, t in p.items():
            if not bool(torch.isfinite(t).all()):
                raise HyperzooError(
                    f"the GHN predicted NaN or infinite values for {name!r} of {g.name!r}; its weights or inputs are "
                    "not finite (a diverged or corrupt checkpoint): use another checkpoint"
                )


def is_norm_node(graph: ArchGraph, v: int) -> bool:
    """Whether node ``v`` is a normalization node (``bn``/``ln``: it predicts its module's bias with the weight)."""
    return int(graph.op[v]) in (OP_ID["bn"], OP_ID["ln"])


def set_bn_batch_stats(model: nn.Module) -> nn.Module:
    """Makes every batch-norm layer normalize with batch statistics (predicted networks have no running stats).

    The batch-statistics switch of :func:`hyperzoo.hypernets.functional.set_norm_statistics`, by its GHN name.
    """
    return set_norm_statistics(model, "batch")


def _sweep_plan(
    graph: ArchGraph,
    edge_index: Tensor,
    edge_dist: Tensor,
    s_max: int,
    ve: bool,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
) -> Any:
    """The GatedGNN's sweep plan of a graph or a :class:`Batch`; a single graph keeps its plan (planned once).

    The cache lives in the graph's instance ``__dict__`` (ArchGraph is unhashable), keyed by the edge tensor's
    identity, the cutoff and the device, so an edited or re-cut graph is planned again.
    """
    from hyperzoo.ghn.gatedgnn import sweep_plan

    if not ve:
        keep = edge_dist == 1
        edge_index, edge_dist = edge_index[:, keep], edge_dist[keep]
    single = not isinstance(graph, Batch)  # a batch is built per call: nothing to cache it with
    key = (graph.edge_index.data_ptr(), int(graph.edge_index.shape[1]), s_max, ve, str(device), dtype)
    cached = graph.__dict__.get("_hyperzoo_plan")
    if single and cached is not None and cached[0] == key:
        return cached[1]
    forward, backward = sweep_plan(int(graph.num_nodes), edge_index, edge_dist, dtype=dtype)
    plan = ([step.to(device) for step in forward], [step.to(device) for step in backward])
    if single:
        graph.__dict__["_hyperzoo_plan"] = (key, plan)
    return plan

"""GHN-2: a graph hypernetwork predicting all parameters of a network from its computation graph.

Knyazev, Drozdzal, Taylor, Romero-Soriano. "Parameter Prediction for Unseen Deep Architectures", NeurIPS 2021
(reference code ``facebookresearch/ppuda``). Pipeline for one graph:

1. ``h^0_v = E_op[op_v] + E_shape(shape_v)`` (:class:`ShapeEncoder`);
2. GatedGNN with virtual edges (Eq. 3-4, :class:`GatedGNN`), then LayerNorm (GHN-2);
3. per node, a decoder by parameter kind: :class:`ConvDecoder` for 2-D/4-D weights (its class head for the
   classifier weight), ``decoder_1d`` for 1-D tensors (a normalization node gives weight and bias), ``bias_class`` on
   top of ``decoder_1d`` for the classifier bias;
4. tiling to the real shape and operation-dependent normalization.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
from torch import Tensor, nn

from hyperzoo.errors import HyperzooError
from hyperzoo.ghn.decoder import ConvDecoder, normalize_parameter, tile_to_shape
from hyperzoo.ghn.gatedgnn import GatedGNN
from hyperzoo.ghn.shape_encoder import ShapeEncoder
from hyperzoo.graphs import graph_from_module
from hyperzoo.graphs.arch_graph import ArchGraph

__all__ = ["GHN2"]

NUM_PRIMITIVES = 15  # the reference's op vocabulary (PRIMITIVES_DEEPNETS1M)
_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


class GHN2(nn.Module):
    """GHN-2 (and GHN-1 with ``ve=False, layernorm=False, weight_norm=False``).

    Args:
        hid: node feature size.
        max_shape: largest decoded tensor ``(out, in, k, k)``.
        num_classes: classes of the dataset the GHN predicts classifiers for.
        ve: virtual edges (``s_max = 50``) in the GatedGNN.
        layernorm: LayerNorm on the node embeddings after the GNN.
        weight_norm: operation-dependent normalization of predicted parameters.
        s_max: longest shortest path used as a virtual edge when the GHN builds a graph itself.
    """

    def __init__(
        self,
        hid: int = 32,
        max_shape: tuple[int, int, int, int] = (64, 64, 11, 11),
        num_classes: int = 10,
        ve: bool = True,
        layernorm: bool = True,
        weight_norm: bool = True,
        s_max: int = 50,
    ) -> None:
        super().__init__()
        if len(max_shape) != 4:
            raise ValueError(f"max_shape must have 4 entries, got {max_shape}")
        self.hid, self.num_classes = hid, num_classes
        o, i, kh, kw = (int(v) for v in max_shape)
        self.max_shape: tuple[int, int, int, int] = (o, i, kh, kw)
        self.epoch: int | None = None  # training epoch of a loaded checkpoint
        self.ve, self.weight_norm = ve, weight_norm
        self.s_max = s_max if ve else 1
        self.op_embed = nn.Embedding(NUM_PRIMITIVES, hid)
        self.shape_encoder = ShapeEncoder(hid, num_classes, self.max_shape)
        self.gnn = GatedGNN(hid, ve=ve)
        self.node_norm = nn.LayerNorm(hid) if layernorm else None
        self.decoder = ConvDecoder(hid, (4 * hid, 8 * hid), self.max_shape, num_classes)
        max_ch = max(self.max_shape[:2])
        self.decoder_1d = nn.Sequential(nn.Linear(hid, 2 * hid), nn.ReLU(), nn.Linear(2 * hid, 2 * max_ch))
        self.bias_class = nn.Linear(max_ch, num_classes)  # applied after a ReLU

    # ------------------------------------------------------------------ graph -> node embeddings
    def embed_nodes(self, graph: ArchGraph) -> Tensor:
        """Node embeddings ``[N, hid]`` after the GatedGNN (and LayerNorm)."""
        device = self.op_embed.weight.device
        op = graph.op.to(device)
        if int(op.max()) >= NUM_PRIMITIVES:
            raise HyperzooError(
                f"graph {graph.name!r} has ops outside GHN-2's 15 primitives ({sorted(set(graph.op_names))}); "
                "GHN-2 embeds only the reference vocabulary"
            )
        shape = graph.shape.to(device)
        x = self.shape_encoder(self.op_embed(op), shape, shape.abs().sum(dim=1) > 0)
        edge_dist = graph.edge_dist
        keep = edge_dist <= self.s_max
        x = self.gnn(x, graph.edge_index[:, keep].to(device), edge_dist[keep].to(device))
        return self.node_norm(x) if self.node_norm is not None else x

    # ------------------------------------------------------------------ prediction
    def predict_parameters(
        self, model_or_graph: nn.Module | ArchGraph, model: nn.Module | None = None
    ) -> dict[str, Tensor]:
        """Predicts every parameter that has a node in the graph.

        Args:
            model_or_graph: a network (its graph is built with :func:`graph_from_module`) or its :class:`ArchGraph`.
            model: the network when a graph is given (it supplies the real parameter shapes and the module types).

        Returns:
            ``{parameter name: tensor}`` in the network's shapes, still attached to the GHN's autograd graph. A
            normalization node gives both its weight and its bias.
        """
        if isinstance(model_or_graph, ArchGraph):
            graph = model_or_graph
            if model is None:
                raise HyperzooError("predict_parameters(graph) needs the network too: predict_parameters(graph, model)")
        else:
            model = model_or_graph
            graph = graph_from_module(model, s_max=self.s_max)
        params = dict(model.named_parameters())
        modules = dict(model.named_modules())
        x = self.embed_nodes(graph)

        n = len(graph.param_names)
        has_param = graph.has_param.tolist()
        groups: dict[Any, list[int]] = defaultdict(list)
        for v, name in enumerate(graph.param_names):
            if not has_param[v]:
                continue
            if name not in params:
                raise HyperzooError(f"graph node {v} names parameter {name!r}, which the network does not have")
            groups[self._kind(v, n, name, params[name].shape)].append(v)

        out: dict[str, Tensor] = {}
        for kind, nodes in groups.items():
            xs = x[torch.tensor(nodes, device=x.device)]
            if kind == "cls_w":
                pred = self.decoder(xs, class_pred=True)
            elif kind in ("1d", "cls_b"):
                pred = self.decoder_1d(xs).view(len(nodes), 2, -1)
                if kind == "cls_b":
                    pred = self.bias_class(torch.relu(pred))
            else:
                pred = self.decoder(xs, kind[1:])
            for j, v in enumerate(nodes):
                name = graph.param_names[v]
                if kind in ("1d", "cls_b"):
                    is_weight = not name.endswith("bias")
                    out[name] = self._finish(pred[j][0 if is_weight else 1], params[name].shape, is_weight)
                    module_name, _, leaf = name.rpartition(".")
                    bias_name = f"{module_name}.bias" if module_name else "bias"
                    if (
                        is_weight
                        and leaf == "weight"
                        and isinstance(modules.get(module_name), _NORM_TYPES)
                        and bias_name in params
                    ):
                        out[bias_name] = self._finish(pred[j][1], params[bias_name].shape, False)
                else:
                    w = pred[j]
                    target = params[name].shape
                    if kind != "cls_w":
                        w = w[(slice(None), slice(None)) + (0,) * (4 - len(target))] if len(target) < 4 else w
                    out[name] = self._finish(w, target, True)
        return out

    @staticmethod
    def _kind(v: int, n: int, name: str, shape: torch.Size) -> Any:
        """Decoder group of node ``v``: the classifier is the weight node second to last / the bias node last."""
        if len(shape) == 1:
            return "cls_b" if (v == n - 1 and name.endswith(".bias")) else "1d"
        if v == n - 2 and name.endswith(".weight"):
            return "cls_w"
        spatial = tuple(shape[2:4]) if len(shape) >= 4 else ((shape[2], 1) if len(shape) == 3 else (1, 1))
        return ("4d", int(spatial[0]), int(spatial[1]))

    def _finish(self, w: Tensor, shape: torch.Size, is_weight: bool) -> Tensor:
        w = tile_to_shape(w, shape)
        return normalize_parameter(w, is_weight) if self.weight_norm else w

    # ------------------------------------------------------------------ the reference's ghn(model)
    def forward(self, model: nn.Module, graph: ArchGraph | None = None, bn_train: bool = True) -> nn.Module:
        """Sets the parameters of ``model`` in place to the predicted ones and returns it (``ghn(model)``).

        In training mode the predicted tensors replace the parameters (gradients flow to the GHN); in eval mode their
        values are copied into the existing parameters. With ``bn_train`` batch-norm layers use batch statistics, as
        the reference does, since running statistics are not predicted.
        """
        pred = self.predict_parameters(graph, model) if graph is not None else self.predict_parameters(model)
        modules = dict(model.named_modules())
        for name, tensor in pred.items():
            module_name, _, leaf = name.rpartition(".")
            module = modules[module_name]
            if self.training:
                module._parameters[leaf] = tensor  # a non-leaf tensor: keeps the path to the GHN
            else:
                with torch.no_grad():
                    module._parameters[leaf].data = tensor.detach().clone()
        if bn_train:
            for m in model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.track_running_stats = False
                    m.training = True
        return model

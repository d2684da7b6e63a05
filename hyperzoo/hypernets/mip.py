"""Magnitude Invariant Parametrizations (MIP) for hypernetworks conditioned on hyperparameters.

González Ortiz, Guttag, Dalca. "Magnitude Invariant Parametrizations Improve Hypernetwork Learning", ICLR 2024
(arXiv 2304.07645). With ReLU-like activations and zero biases, a hypernet ``h`` is positively homogeneous, so
``||h(a g)|| = a ||h(g)||``: the primary weights' scale follows the input's magnitude and a small ``g`` collapses
them. MIP removes the proportionality in two places:

1. **input encoding** ``E``: each hyperparameter ``g in [0, 1]`` becomes ``[cos(pi g / 2), sin(pi g / 2)]`` (constant
   L2 norm 1 per hyperparameter; :data:`ENCODINGS` also has ``[g, 1 - g]``, constant L1 norm, and ``"none"``);
2. **additive output**: ``theta = theta0 + h(E(g))``, where ``theta0`` is an explicit set of learnable parameters
   independent of ``g``.

``theta0`` here is one flat parameter vector ``MIPHypernet.theta0`` in spec order (:meth:`MIPHypernet.theta0_dict`
gives it by name). It is initialised from the target network's own parameters, i.e. the target's own init
(``theta0="target"``, the default), from a pretrained state dict (``theta0={name: tensor}`` or
:meth:`MIPHypernet.from_pretrained`), or with zeros. ``residual=False`` with ``encoding="none"`` is the default
parametrization ``theta = h(g)``, the baseline of the paper and of ``experiments/exp_mip.py``.

The hypernet body is any module mapping ``[B, encoded size]`` to ``{name: [B, *shape]}``: :class:`MLPHypernet`,
:class:`ChunkedMLPHypernet` or :class:`~hyperzoo.hypernets.ghn_decoder.GHNDecoderHypernet` (the GHN-2 decoder).

Bad input: a hyperparameter outside ``[0, 1]`` (or NaN) raises :class:`~hyperzoo.errors.ConfigError` naming the
offending range; ``clamp=True`` clamps instead (documented behaviour, no warning).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from hyperzoo.errors import ConfigError
from hyperzoo.hypernets.mlp import ChunkedMLPHypernet, MLPHypernet
from hyperzoo.hypernets.specs import NormPolicy, ParamSpec, ShapeMismatchError, check_params, param_specs, split_flat

__all__ = ["ENCODINGS", "InputEncoder", "MIPHypernet", "encode_hyperparameters"]

Encoding = Literal["cos|sin", "z|1-z", "none"]
ENCODINGS: tuple[str, ...] = ("cos|sin", "z|1-z", "none")


def encode_hyperparameters(g: Tensor, encoding: str = "cos|sin", clamp: bool = False) -> Tensor:
    """Encodes hyperparameters ``g`` ``[..., d]`` in ``[0, 1]`` as ``[..., 2 d]`` (``[..., d]`` for ``"none"``).

    ``"cos|sin"``: ``[cos(pi g/2), sin(pi g/2)]`` per entry (L2 norm ``sqrt(d)`` whatever ``g``);
    ``"z|1-z"``: ``[g, 1 - g]`` (L1 norm ``d``); ``"none"``: ``g`` itself.

    Raises:
        ConfigError: unknown encoding, or ``g`` outside ``[0, 1]`` / NaN without ``clamp``.
    """
    if encoding not in ENCODINGS:
        raise ConfigError(f"unknown MIP encoding {encoding!r}; use one of {', '.join(ENCODINGS)}")
    if bool(torch.isnan(g).any()):
        raise ConfigError("MIP hyperparameters contain NaN; every hyperparameter must be a number in [0, 1]")
    if clamp:
        g = g.clamp(0.0, 1.0)
    elif g.numel() and (bool((g < 0).any()) or bool((g > 1).any())):
        raise ConfigError(
            f"MIP hyperparameters must lie in [0, 1] but range over [{float(g.min()):.4g}, {float(g.max()):.4g}]; "
            "rescale them to [0, 1] (e.g. (g - low) / (high - low)) or pass clamp=True"
        )
    if encoding == "none":
        return g
    if encoding == "cos|sin":
        return torch.cat([torch.cos(0.5 * math.pi * g), torch.sin(0.5 * math.pi * g)], dim=-1)
    return torch.cat([g, 1.0 - g], dim=-1)


class InputEncoder(nn.Module):
    """:func:`encode_hyperparameters` as a module (no parameters).

    Args:
        num_inputs: number of hyperparameters ``d``.
        encoding: ``"cos|sin"``, ``"z|1-z"`` or ``"none"``.
        clamp: clamp to ``[0, 1]`` instead of raising.

    Shapes:
        ``[..., d]`` -> ``[..., out_features]`` with ``out_features = 2 d`` (``d`` for ``"none"``).
    """

    def __init__(self, num_inputs: int = 1, encoding: str = "cos|sin", clamp: bool = False) -> None:
        super().__init__()
        if encoding not in ENCODINGS:
            raise ConfigError(f"unknown MIP encoding {encoding!r}; use one of {', '.join(ENCODINGS)}")
        if num_inputs < 1:
            raise ConfigError(f"num_inputs must be >= 1, got {num_inputs}")
        self.num_inputs, self.encoding, self.clamp = int(num_inputs), encoding, bool(clamp)

    @property
    def out_features(self) -> int:
        return self.num_inputs * (1 if self.encoding == "none" else 2)

    def forward(self, g: Tensor) -> Tensor:
        if g.shape[-1] != self.num_inputs:
            raise ShapeMismatchError(
                f"InputEncoder: hyperparameters have shape {tuple(g.shape)}, expected [..., {self.num_inputs}]"
            )
        return encode_hyperparameters(g, self.encoding, self.clamp)

    def extra_repr(self) -> str:
        return f"num_inputs={self.num_inputs}, encoding={self.encoding!r}, clamp={self.clamp}"


class MIPHypernet(nn.Module):
    """A hyperparameter-conditioned hypernet with MIP: ``theta(g) = theta0 + h(E(g))``.

    Update rule: ``theta0`` and the parameters of ``h`` are trained jointly by the loss of the primary network run
    with ``theta(g)`` (:func:`~hyperzoo.hypernets.functional.functional_forward` or ``batched_forward`` for one
    ``g`` per sample).

    Args:
        target: the primary network; its specs are taken with ``norm`` and its current parameters seed ``theta0``.
        hypernet: the body ``h``: ``"mlp"``, ``"chunked"``, ``"ghn_decoder"`` or a module with ``in_features ==
            encoder.out_features`` returning ``{name: [B, *shape]}``.
        num_inputs: number of hyperparameters ``d``.
        encoding: input encoding (``"cos|sin"``: MIP; ``"none"``: the default parametrization).
        residual: add ``theta0`` (MIP); False gives ``theta = h(E(g))``.
        theta0: ``"target"`` (copy the target's parameters), ``"zeros"``, or ``{name: tensor}`` (pretrained).
        norm: norm-layer policy of :func:`~hyperzoo.hypernets.specs.param_specs`.
        clamp: clamp hyperparameters to ``[0, 1]`` instead of raising.
        hidden: hidden widths of a built-in body.
        chunk_size: chunk size of the ``"chunked"`` body.
        specs: explicit specs (otherwise taken from ``target``).

    Shapes:
        ``g``: ``[d]`` -> ``{name: [*shape]}``; ``[B, d]`` -> ``{name: [B, *shape]}``.
    """

    def __init__(
        self,
        target: nn.Module,
        hypernet: str | nn.Module = "mlp",
        num_inputs: int = 1,
        encoding: str = "cos|sin",
        residual: bool = True,
        theta0: str | Mapping[str, Tensor] = "target",
        norm: NormPolicy = "generate",
        clamp: bool = False,
        hidden: Sequence[int] = (64, 64),
        chunk_size: int = 4096,
        specs: Sequence[ParamSpec] | None = None,
    ) -> None:
        super().__init__()
        self.specs = list(specs) if specs is not None else param_specs(target, norm=norm)
        self.encoder = InputEncoder(num_inputs, encoding, clamp)
        self.residual = bool(residual)
        d = self.encoder.out_features
        self.body: nn.Module
        if isinstance(hypernet, nn.Module):
            self.body = hypernet
        elif hypernet == "mlp":
            self.body = MLPHypernet(d, self.specs, hidden=hidden)
        elif hypernet == "chunked":
            self.body = ChunkedMLPHypernet(d, self.specs, chunk_size=chunk_size, hidden=hidden)
        elif hypernet == "ghn_decoder":
            from hyperzoo.hypernets.ghn_decoder import GHNDecoderHypernet

            self.body = GHNDecoderHypernet(d, self.specs)
        else:
            raise ConfigError(f"unknown MIP hypernet {hypernet!r}; use 'mlp', 'chunked', 'ghn_decoder' or a module")
        body_in = getattr(self.body, "in_features", d)
        if body_in != d:
            raise ShapeMismatchError(
                f"MIPHypernet: the hypernet takes {body_in} inputs but the {encoding!r} encoding of {num_inputs} "
                f"hyperparameters has {d}; build the hypernet with in_features={d}"
            )
        to_residual = getattr(self.body, "for_residual", None)
        if self.residual and callable(to_residual):
            to_residual()  # the body emits a delta: theta0 carries the target's mean (norm scales = 1)
        self.theta0 = nn.Parameter(torch.zeros(sum(s.numel for s in self.specs)), requires_grad=self.residual)
        if isinstance(theta0, Mapping):
            self.set_theta0(theta0)
        elif theta0 == "target":
            self.set_theta0(dict(target.named_parameters()))
        elif theta0 != "zeros":
            raise ConfigError(f"theta0 must be 'target', 'zeros' or a {{name: tensor}} mapping, got {theta0!r}")

    @classmethod
    def from_pretrained(cls, target: nn.Module, state_dict: Mapping[str, Tensor], **kwargs: object) -> MIPHypernet:
        """A MIP hypernet whose ``theta0`` is ``state_dict`` (e.g. the weights of a trained network)."""
        return cls(target, theta0=state_dict, **kwargs)  # type: ignore[arg-type]

    def set_theta0(self, params: Mapping[str, Tensor]) -> None:
        """Copies ``{name: tensor}`` into ``theta0`` (every spec must be present with its shape)."""
        chosen = {s.name: params[s.name] for s in self.specs if s.name in params}
        check_params(chosen, self.specs, where="MIPHypernet.set_theta0")
        with torch.no_grad():
            flat = torch.cat([chosen[s.name].detach().reshape(-1).to(self.theta0) for s in self.specs])
            self.theta0.copy_(flat)

    def theta0_dict(self) -> dict[str, Tensor]:
        """``theta0`` by parameter name (views of the flat parameter)."""
        return split_flat(self.theta0, self.specs)

    def delta(self, g: Tensor) -> dict[str, Tensor]:
        """The hypernet's output ``h(E(g))`` for a batch ``g`` ``[B, d]``."""
        out = self.body(self.encoder(g))
        check_params(out, self.specs, batch_dims=1, where=f"MIPHypernet body {type(self.body).__name__}")
        return out

    def forward(self, g: Tensor) -> dict[str, Tensor]:
        single = g.dim() == 1
        gb = g.unsqueeze(0) if single else g
        if gb.dim() != 2:
            raise ShapeMismatchError(f"MIPHypernet: hyperparameters must be [d] or [B, d], got {tuple(g.shape)}")
        out = self.delta(gb)
        if self.residual:
            theta0 = self.theta0_dict()
            out = {k: theta0[k] + v for k, v in out.items()}
        return {k: v[0] for k, v in out.items()} if single else out

    def extra_repr(self) -> str:
        return f"residual={self.residual}, tensors={len(self.specs)}, theta0={self.theta0.numel()} entries"

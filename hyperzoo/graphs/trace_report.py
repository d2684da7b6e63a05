"""What the graph trace reports: unmapped parameters, meta-trace fallbacks, cycles; the CPU attention choice.

Kept apart from :mod:`hyperzoo.graphs.from_module` so the trace itself stays the reference's algorithm.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from hyperzoo.graphs.roles import role_hint

__all__ = ["MetaTraceFallbackWarning", "cpu_picks_flash", "cycle_message", "report_fallback", "unmapped_message"]

_FLASH = 1  # torch's SDPBackend.FLASH_ATTENTION
_reported: set[tuple[str, str]] = set()


class MetaTraceFallbackWarning(UserWarning):
    """The meta-device trace failed for a model and its graph was traced with a real forward pass."""


def cpu_picks_flash(
    query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None, is_causal: bool, scale: float | None
) -> bool:
    """Whether ``F.scaled_dot_product_attention`` on CPU tensors of these shapes, strides and ``requires_grad``
    flags runs the fused flash kernel (else the math path), asked of torch's own backend choice.

    The stand-ins are uninitialised CPU tensors with the same strides; a mask is an expanded scalar (its shape is
    all the choice reads), so no large mask is allocated.
    """  # noqa: D205
    if attn_mask is not None and attn_mask.requires_grad:
        return False  # the fused kernel cannot differentiate the mask: CPU runs the math path

    def stand_in(t: Tensor) -> Tensor:
        return torch.empty_strided(tuple(t.shape), tuple(t.stride())).requires_grad_(t.requires_grad)

    mask = None
    if attn_mask is not None:
        mask = torch.empty(1, dtype=attn_mask.dtype).expand(attn_mask.shape)
        mask.requires_grad_(attn_mask.requires_grad) if attn_mask.dtype.is_floating_point else None
    try:
        choice = torch._fused_sdp_choice(
            stand_in(query), stand_in(key), stand_in(value), mask, 0.0, is_causal, scale=scale
        )
    except Exception:  # an input CPU rejects: the default (math) path reports it as CPU would
        return False
    return int(choice) == _FLASH


def report_fallback(name: str, error: BaseException) -> str:
    """Warn (once per model name and cause) that the meta trace of ``name`` fell back to a real forward pass.

    Returns:
        The cause, as stored in ``graph.meta_fallback``.
    """
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    text = re.sub(r"0x[0-9a-f]+", "0x...", text)
    cause = f"{type(error).__name__}: {text[:200]}"
    if (name, cause) not in _reported:
        _reported.add((name, cause))
        warnings.warn(
            f"{name}: the meta-device trace failed ({cause}); traced with a real forward pass instead (same graph, "
            "slower). Pass meta=False to skip the meta attempt.",
            MetaTraceFallbackWarning,
            stacklevel=3,
        )
    return cause


def unmapped_message(
    name: str, missing: list[str], params: Mapping[str, Any], module_of: Mapping[str, tuple[str, str]]
) -> str:
    """The error for parameters without a role: each one with its module and the ``param_ops`` entry that maps it."""
    lines = []
    for full in missing[:20]:
        mod, mtype = module_of.get(full, ("", "?"))
        shape = tuple(params[full].shape) if full in params else ()
        lines.append(
            f"  {full}: module {mod or '<root>'} ({mtype}), shape {list(shape)}; fix: {role_hint(full, mtype, shape)}"
        )
    more = f"\n  ... and {len(missing) - 20} more" if len(missing) > 20 else ""
    return (
        f"{name}: {len(missing)} parameter tensor(s) have no graph op (neither the name table nor role inference "
        "from the module type, shape and use maps them):\n" + "\n".join(lines) + more + "\n"
        "Map them with graph_from_module(..., param_ops={'name or fnmatch pattern': op}) (ops: "
        "hyperzoo.graphs.PRIMITIVES; 'param' for any other tensor), or pass strict=False to list them in "
        "graph.unmapped (a GHN then refuses the graph unless allow_unpredicted=True)."
    )


def cycle_message(name: str, nodes: list[Any], error: str) -> str:
    """The error for a traced graph with a cycle, naming the nodes on it."""
    ids = [int(i) for i in re.findall(r"\d+", error.partition("[")[2].partition("]")[0])]
    names = [getattr(nodes[i], "name", str(i)) for i in ids if 0 <= i < len(nodes)]
    return (
        f"{name}: the traced computation graph has a cycle through {names}; a computation graph must be a DAG. "
        "Shared parameters get one node per use, so this points at an autograd pattern the trace does not "
        "handle: please report it with the model definition."
    )

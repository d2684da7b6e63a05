"""Loading a GHN's weights after checking they fit it: keys, shapes and finite values.

Shared by every GHN loader (:mod:`hyperzoo.ghn.checkpoint` for hyperzoo and ppuda files,
:mod:`hyperzoo.ghn.reference_ghn3` for GHN-3 files), so that none of them imports another.
"""

from __future__ import annotations

import torch

from hyperzoo.errors import DataError
from hyperzoo.io import check_finite

__all__ = ["NONFINITE_HINT", "load_fitting_state"]

#: what to do about a GHN file with NaN or infinite weights
NONFINITE_HINT = "the GHN diverged or the file is corrupt; use an earlier checkpoint"


def load_fitting_state(ghn: torch.nn.Module, state: dict[str, torch.Tensor], where: str, what: str) -> None:
    """Loads ``state`` into ``ghn`` after checking it fits (keys, shapes) and is finite; a ``DataError`` names why not.

    Args:
        ghn: the freshly built GHN.
        state: its weights, with hyperzoo's key names.
        where: the file, for the message.
        what: what the weights must fit, for the message (e.g. "its GHN config").
    """
    expected = ghn.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        detail = "; ".join(
            f"{name}: {keys[:4]}{' ...' if len(keys) > 4 else ''}"
            for name, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", wrong))
            if keys
        )
        raise DataError(f"{where}: weights do not fit {what} ({detail}); is it a checkpoint of another GHN?")
    check_finite(state, where, "GHN tensor", NONFINITE_HINT)
    ghn.load_state_dict(state, strict=True)

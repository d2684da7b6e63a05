"""Former home of :func:`count_macs` and :func:`count_params`, now in :mod:`hyperzoo.nets.compute` (re-exported).

Kept so that ``from hyperzoo.merge.compute import count_macs`` keeps working.
"""

from hyperzoo.nets.compute import count_macs, count_params

__all__ = ["count_macs", "count_params"]

"""Errors a user can act on.

Every error hyperzoo raises for bad input derives from :class:`HyperzooError`. Its message says what was wrong,
where (which name, file, key) and what to do instead; the ``hyperzoo`` command prints it as a single line
without a traceback.
"""

from __future__ import annotations

__all__ = ["ConfigError", "DataError", "HyperzooError", "UnknownNameError"]


class HyperzooError(Exception):
    """Base class of user-facing errors."""


class UnknownNameError(HyperzooError, LookupError):
    """A name (model, variant, dataset) that no registry knows."""


class DataError(HyperzooError):
    """Missing, corrupt or unusable data (roots, archives, caches)."""


class ConfigError(HyperzooError):
    """An invalid configuration value or key."""

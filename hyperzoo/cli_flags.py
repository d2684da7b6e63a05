"""Library errors name Python arguments; the ``hyperzoo`` command translates them to its flags.

A library function that refuses an argument names it as a call would: ``batch_size=0: must be at least 1``,
``pass allow_unpredicted=True to ...``. A command states which of its flags feed which arguments (by default the
parser's own: ``--batch-size`` stores ``batch_size``) with :func:`argument_flags`, and :func:`hyperzoo.cli.main`
rewrites the message of a :class:`~hyperzoo.errors.HyperzooError` with :func:`flag_message` before printing it:
``--batch-size 0: must be at least 1``, ``pass --skip-unknown to ...``. This module imports nothing heavy.

Example::

    p.set_defaults(func=_cmd_eval, argument_flags=argument_flags(p, allow_unpredicted="--skip-unknown"))
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping

__all__ = ["argument_flags", "flag_message"]


def argument_flags(parser: argparse.ArgumentParser, **extra: str) -> dict[str, str]:
    """``{python argument: flag}`` for every option of ``parser`` (its long form), updated with ``extra``.

    ``extra`` maps library argument names that differ from the option's destination, e.g.
    ``allow_unpredicted="--skip-unknown"``.
    """
    flags: dict[str, str] = {}
    for action in parser._actions:
        longs = [o for o in action.option_strings if o.startswith("--")]
        if longs and action.dest not in ("help", argparse.SUPPRESS):
            flags[action.dest] = longs[0]
    flags.update(extra)
    return flags


def flag_message(message: str, flags: Mapping[str, str]) -> str:
    """``message`` with each ``name=True`` written as ``FLAG`` and each other ``name=value`` as ``FLAG value``.

    Only names in ``flags`` are rewritten, and only where they stand as arguments (``batch_size=``, not
    ``eval_batch_size=`` or ``dm.batch_size=``).
    """
    if not flags:
        return message
    names = "|".join(re.escape(n) for n in sorted(flags, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w.])({names})=(True\b)?")

    def repl(m: re.Match[str]) -> str:
        flag = flags[m.group(1)]
        return flag if m.group(2) else f"{flag} "

    # two library names for one flag ("allow_unpredicted=True (or skip_unknown=True)") say the flag once
    return re.sub(r"(--[\w-]+) \(or \1\)", r"\1", pattern.sub(repl, message))

"""Text tables for people (command output, logs), drawn by :class:`rich.table.Table`.

Machine-readable outputs (JSON, CSV, one name per line for pipes) are written by the commands themselves; this is
only for tables a person reads. :func:`text_table` returns plain text (no colour codes), so it can be logged,
tested and printed anywhere; ``rich`` is imported on first use, which keeps ``hyperzoo --help`` light.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence

__all__ = ["SECTION", "text_table"]

#: a row of :func:`text_table` that draws a horizontal rule instead (e.g. before summary rows)
SECTION = None


def text_table(
    header: Sequence[str],
    rows: Iterable[Sequence[object] | None],
    *,
    align: str = "",
    title: str | None = None,
    width: int | None = None,
) -> str:
    """A table as plain text: header, a rule, the rows; ``None`` rows (:data:`SECTION`) draw a rule.

    Args:
        header: the column titles.
        rows: the cells (``str()`` of each), or :data:`SECTION` for a rule between groups of rows.
        align: one letter per column, ``l`` (left, the default) or ``r`` (right, for numbers).
        title: a line above the table.
        width: the widest the table may get (default: as wide as its cells, up to 1000 characters); cells fold.

    Returns:
        The table, lines without trailing spaces, ending without a newline.
    """
    from rich import box
    from rich.console import Console
    from rich.table import Table

    rules = box.Box("    \n    \n ── \n    \n ── \n ── \n    \n    \n")  # box.SIMPLE, plus rules between sections
    table = Table(box=rules, show_edge=False, pad_edge=False, title=title, title_justify="left")
    for i, name in enumerate(header):
        table.add_column(name, justify="right" if align[i : i + 1] == "r" else "left", overflow="fold")
    pending_rule = False
    for row in rows:
        if row is SECTION:
            pending_rule = True
            continue
        if pending_rule and table.row_count:
            table.rows[-1].end_section = True
        pending_rule = False
        table.add_row(*(str(cell) for cell in row))
    out = io.StringIO()
    console = Console(file=out, width=width or 1000, color_system=None, force_terminal=False, highlight=False)
    console.print(table, crop=False)
    return "\n".join(line.rstrip() for line in out.getvalue().rstrip("\n").split("\n"))

"""Basket lines of a file that holds a double quote: items may be quoted, CSV style.

Only files with a ``"`` byte come here (the compiled tokenizer never sees a quote, so a file
without one keeps the fast path). The rules, per line (a basket is one line: a quoted item
cannot span lines):

- an item whose first non-blank character is ``"`` is quoted: it runs to the next lone ``"``,
  ``""`` inside it standing for one quote; the separator inside it is text. After the closing
  quote only blanks may come before the separator or the end of the line;
- an unquoted item holding a quote (``12" pizza``) is refused: its quote could open an item
  the separator splits (``bread "white, sliced"``), and guessing would silently misread it;
- items are trimmed of whitespace, quoted or not, as everywhere else;
- a line without a quote splits exactly as the other paths split it.

The output mirrors Arrow's split of the lines (an empty line gives one empty token), so the
general path's report and baskets follow unchanged.
"""

from __future__ import annotations

from pathlib import Path

from basketry.data.errors import DataError


def _split_lines(source: Path, text: str, sep: str | None) -> tuple[list[str], list[int]]:
    """Tokens (trimmed) of every line and the number of tokens per line. ``sep`` None:
    whitespace runs separate items."""
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    values: list[str] = []
    per_line: list[int] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            tokens = [""]
        elif '"' in line:
            tokens = _split_quoted(source, number, line, sep)
        elif sep is None:
            tokens = line.split()
        else:
            tokens = [t.strip() for t in line.split(sep)]
        values.extend(tokens)
        per_line.append(len(tokens))
    return values, per_line


def _split_quoted(source: Path, number: int, line: str, sep: str | None) -> list[str]:
    """The items of one trimmed, non-empty line holding a quote."""
    n = len(line)
    items: list[str] = []
    i = 0

    def is_gap(c: str) -> bool:  # a blank that is not the separator
        return c.isspace() and c != sep

    def at_sep(k: int) -> bool:
        return k < n and (line[k].isspace() if sep is None else line[k] == sep)

    while True:
        where = f"{source}: line {number}: item {len(items) + 1}"
        while i < n and is_gap(line[i]) and sep is not None:
            i += 1
        if i < n and line[i] == '"':
            parts = []
            j = i + 1
            while True:
                k = line.find('"', j)
                if k < 0:
                    raise DataError(
                        f"{where}: the quote opened at column {i + 1} is not closed on this "
                        "line (a basket is one line; a quoted item cannot span lines)"
                    )
                parts.append(line[j:k])
                if k + 1 < n and line[k + 1] == '"':
                    parts.append('"')
                    j = k + 2
                    continue
                break
            value = "".join(parts)
            i = k + 1
            while i < n and is_gap(line[i]) and not (sep is None and at_sep(i)):
                i += 1
            if i < n and not at_sep(i):
                raise DataError(
                    f"{where}: text after the closing quote ({line[i:i + 20]!r}); write a "
                    'quote inside a quoted item as two quotes ("")'
                )
        else:
            j = i
            while j < n and not at_sep(j):
                j += 1
            value = line[i:j]
            if '"' in value:
                raise DataError(
                    f"{where} ({value.strip()!r}) holds a quote but does not start with one; "
                    'quote the whole item and double its quotes ("12"" pizza")'
                )
            i = j
        items.append(value.strip())
        if i >= n:
            return items
        # at the separator: a whitespace separator is a run of blanks
        i += 1
        if sep is None:
            while i < n and line[i].isspace():
                i += 1

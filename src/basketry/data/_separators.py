"""Checking the ``sep`` option (``--sep``) before any file is read.

A separator is exactly one character. Multi-character separators are refused rather than
supported: the compiled tokenizer and Arrow's CSV parser both split on one byte, and no known
transaction format needs more. ``"\\t"`` typed as two characters (backslash, t: what a shell
passes for ``--sep '\\t'``) and the word ``tab`` mean a tab. A space means "any run of
whitespace" in the basket format; every other character, a tab included, separates items on
its own.
"""

from __future__ import annotations

from basketry.data.errors import DataError

# spellings of a tab that a shell passes as several characters
_TAB_SPELLINGS = {"\\t": "\t", "tab": "\t", "TAB": "\t"}


def _check_sep(sep: str | None) -> str | None:
    """``sep`` normalised (a spelled-out tab becomes a tab), or a DataError saying why it cannot
    separate items or fields. None (detect it) passes through."""
    if sep is None:
        return None
    if not isinstance(sep, str):
        raise DataError(f"--sep must be a string, not {type(sep).__name__}")
    sep = _TAB_SPELLINGS.get(sep, sep)
    why = None
    if sep == "":
        why = "is empty; give one character, or leave it out to detect the separator"
    elif len(sep) > 1:
        why = (
            f"is {len(sep)} characters; the separator must be exactly one character "
            "(multi-character separators are not supported)"
        )
    elif sep in "\n\r":
        why = "is a line break; line breaks end a basket or a row, they cannot separate items"
    elif sep == '"':
        why = 'is the quote character; quotes enclose an item that holds the separator'
    elif (ord(sep) < 32 and sep != "\t") or ord(sep) == 127 or "\x80" <= sep <= "\x9f":
        why = "is a control character; a text file does not separate fields with it"
    elif sep in "\ufeff\u2028\u2029":
        why = "is a byte-order mark or a line separator, not a field separator"
    if why is not None:
        raise DataError(f"--sep {sep!r} {why}")
    return sep


def _check_csv_sep(sep: str) -> None:
    """The long-CSV parser splits on one byte: a non-ASCII separator cannot work there."""
    if not sep.isascii():
        raise DataError(
            f"--sep {sep!r} is not an ASCII character; the long CSV format needs a one-byte "
            "field delimiter such as , ; | or a tab"
        )

"""Errors raised when input data cannot be read as baskets."""

from __future__ import annotations


class DataError(ValueError):
    """Input data is missing, malformed or empty; the message names the file, line or field.

    Raised by :func:`basketry.data.read_baskets` and the other functions of ``basketry.data``
    for problems with the user's data (never for bugs). The CLI turns it into exit status 2.
    """

"""Errors raised when a model artifact cannot be written, read or trusted."""


class ModelError(ValueError):
    """A model artifact is missing, malformed, tampered with, or cannot be written."""


class ModelFormatError(ModelError):
    """The artifact is not a basketry model, or of a format version this code cannot read."""


class ModelIntegrityError(ModelError):
    """A file of the artifact does not match the checksum or size its manifest records, or the
    manifest's ``model_version`` does not match the content it is derived from."""


class ModelContentError(ModelError):
    """The artifact's files are intact but what they say is unsound: an item id outside the
    items table, a count or measure out of range, an invalid scoring object. The message names
    the file, the column (or manifest field) and an example row."""


class ScoringArgumentError(ModelError):
    """A scoring call was given an argument it cannot answer (``k`` not a whole number >= 1)."""

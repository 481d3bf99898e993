"""Errors raised when a model artifact cannot be written, read or trusted."""


class ModelError(ValueError):
    """A model artifact is missing, malformed, tampered with, or cannot be written."""


class ModelFormatError(ModelError):
    """The artifact is not a basketry model, or of a format version this code cannot read."""


class ModelIntegrityError(ModelError):
    """A file of the artifact does not match the checksum or size its manifest records."""

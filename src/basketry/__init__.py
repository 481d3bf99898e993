"""basketry: association rules from transaction histories, served in production."""

__version__ = "0.1.0"

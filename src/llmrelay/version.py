"""The version, where every layer may read it (the package's face re-exports it)."""

__version__ = "0.1.0"

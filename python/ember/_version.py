"""ember's version, read from the installed distribution's metadata.

The artifact manifest records the version that wrote it. The metadata is the single source of
truth (pyproject.toml); the fallback covers running from a source tree that was never installed.
"""
from importlib import metadata

try:
    __version__ = metadata.version("ember")
except metadata.PackageNotFoundError:
    __version__ = "0.1.0"

"""CastSlice: rewrite whole-GPU requests into shared GPU slices at Pod admission."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("castslice")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

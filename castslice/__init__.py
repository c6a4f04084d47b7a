"""CastSlice: rewrite whole-GPU requests into shared GPU slices at Pod admission."""

__version__ = "0.5.0"
"""The one place the version is written: pyproject.toml reads it (setuptools' attr), so no
process reads package metadata to learn it."""

"""Configure: the CASTSLICE_* environment and env files -> an immutable `Config`.

`config.py` (Config, read once at start), `decision.py` (the settings that make the pure
core's Policy), `values.py` (one parser per kind of value), `envfile.py` (env files read as
kustomize reads them). Imports only `castslice.functions`.
"""

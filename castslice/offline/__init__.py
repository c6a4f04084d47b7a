"""Admit files, not HTTP: golden events (`events.py`) and manifests as their Pods would be
admitted (`manifests.py`), through the same `admit()` the server calls. Imports
`castslice.functions` and `castslice.settings`.
"""

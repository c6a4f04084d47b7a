"""Read a live cluster: what `kubectl get ... -o json` printed, never the API itself.

`objects.py` (objects and Pods in a listing, what the scheduler reserves), `cards.py` (the
one card model: what a grant costs of a physical GPU), `dra.py` (the resource.k8s.io/v1
objects the back-ends need), `savings.py`, `audit.py`, and `doctor/` (one check per
back-end). Imports only `castslice.functions`.
"""

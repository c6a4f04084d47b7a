"""CastSlice's decision compiled into the API server's own admission policies (SPEC §7a).

`castslice policy` prints a MutatingAdmissionPolicy that makes the webhook's patch in CEL and
ValidatingAdmissionPolicies that give its warnings and refusals, from the same `Policy` the
webhook decides with. Whatever depends only on the configuration (rules' grants, memory
steps, MIG resource names, texts) is computed here in Python by the webhook's own functions
and written into the CEL as literals; the CEL decides only what depends on the Pod. A
configuration the CEL cannot decide identically is refused (`Unsupported`), never
approximated. The golden events, created through a real API server under both engines, are
the proof (tests/test_apiserver_policy.py).
"""

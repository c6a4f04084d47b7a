"""The pure admission decision: no I/O, no globals, no clock.

Entry point: `admit(check_review(body), policy) -> Admission` in `admit.py`. This package
imports no other CastSlice package: `castslice.settings.config.Config` builds the `Policy` it reads.
"""

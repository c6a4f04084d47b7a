"""The pure admission decision: no I/O, no globals, no clock.

Entry point: castslice.functions.admit.admit(review, config) -> Admission.
"""

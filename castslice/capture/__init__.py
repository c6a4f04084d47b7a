"""Recording admissions in the cluster, and reading them back for replay (SPEC §6)."""

"""CastSlice benchmarks: `make bench` (or `python bench/run.py --short`)."""

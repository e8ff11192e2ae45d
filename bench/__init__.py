"""Benchmarks: `make bench`, or one alone with `python -m bench.<name>_benchmark`."""

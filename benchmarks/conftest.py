"""Benchmarks are their own pytest run (not part of tests/)."""

"""Benchmarks: run by hand, never from the test suite. Each prints one JSON line per figure."""

"""Benchmarks that run inside the engine (python -m core bench ...)."""

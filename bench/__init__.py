"""Performance benchmarks of CLIPood Studio (python -m bench --help); see BENCHMARKS.md."""

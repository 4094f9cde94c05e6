"""Speed and quality measurements of the kit; run each as python -m benchmarks.<name>."""

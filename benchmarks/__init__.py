"""Speed and quality measurements of the kit; run each as python -m benchmarks.<name>."""

import json
from pathlib import Path


def print_result(result, path=None):
    """Every benchmark ends with its result as one JSON line on stdout (the last line, for
    scripts), also written to `path` when given."""
    line = json.dumps(result)
    if path:
        Path(path).write_text(line + "\n")
    print(line)

"""Run every benchmark and print its figures as JSON: ``python -m benchmarks.run``."""

from __future__ import annotations

import importlib
import json
import sys

BENCHMARKS = ("benchmarks.intake", "benchmarks.gmail_sync", "benchmarks.stale_reads", "benchmarks.dispatch_rate")


def main() -> int:
    results = {}
    for name in BENCHMARKS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            results[name] = {"skipped": f"module not available: {exc}"}
            continue
        results[name] = module.run()
        print(f"{name}: {json.dumps(results[name], ensure_ascii=False)}", file=sys.stderr, flush=True)
    print(json.dumps(results, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

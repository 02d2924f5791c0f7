"""Run every benchmark in this folder, one after another, each in its own process (`make bench`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main() -> None:
    """Run benchmarks/*.py except this file; exit non-zero if any fails."""
    here = Path(__file__).parent
    failed = []
    for script in sorted(here.glob("*.py")):
        if script.name == Path(__file__).name or script.name.startswith("_"):
            continue
        print(f"\n=== {script.name} ===", flush=True)
        if subprocess.run([sys.executable, str(script)]).returncode != 0:
            failed.append(script.name)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()

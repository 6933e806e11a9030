"""Where every benchmark records its figures: one section per script in bench/RESULTS.md.

Each script owns the section under its own heading and replaces only that section, so
scripts can run in any order and at different times without losing each other's figures.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

RESULTS_PATH = Path(__file__).resolve().with_name("RESULTS.md")
RESULTS_HEADER = (
    "# Benchmark results\n\n"
    "Each section below is written by the script named in its heading; re-running a script "
    "replaces only its own section. The machine is shared and noisy, so absolute figures move "
    "between runs: compare the ratios, which are taken against a baseline measured in the same "
    "run on the same data.\n"
)


def run_command(argv: list[str], fallback: str) -> str:
    """A command's output for the machine description (``date -u``, ``uname -srm``, ``nproc``)."""
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return fallback


def update_section(title: str, section: str, path: Path = RESULTS_PATH) -> None:
    """Replace the section headed ``title`` (up to the next ``## ``), or append it."""
    text = path.read_text() if path.exists() else RESULTS_HEADER
    pattern = re.compile(r"^" + re.escape(title) + r"\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section.rstrip("\n") + "\n\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    path.write_text(text.rstrip("\n") + "\n")


def publish(title: str, section: str, write: bool = True, path: Path = RESULTS_PATH) -> None:
    """Print a script's section and, unless told not to (``--no-write``), record it under its heading."""
    print()
    print(section)
    if write:
        update_section(title, section, path)
        print(f"updated {path.name}")

"""Start-up benchmark: ``lifecycled --help`` and ``lifecycled --version`` as a user runs them
(a new process each time), beside the floor measured in the same run: an interpreter that only
starts (``python -c pass``) and one that imports argparse and prints a help text.

    python bench/startup.py [--repeat 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

FLOOR = ("import argparse; p = argparse.ArgumentParser(prog='x'); "
         "p.add_subparsers().add_parser('y'); p.print_help()")


def median_seconds(argv: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    bare = median_seconds([sys.executable, "-c", "pass"], args.repeat)
    floor = median_seconds([sys.executable, "-c", FLOOR], args.repeat)
    for what in (["--help"], ["--version"]):
        took = median_seconds([sys.executable, "-m", "lifecycled", *what], args.repeat)
        print(f"lifecycled {what[0]}: {took:.3f} s (median of {args.repeat}); interpreter alone "
              f"{bare:.3f} s, argparse help {floor:.3f} s; {took / floor:.1f}x the argparse floor")


if __name__ == "__main__":
    main()

"""Underpaint benchmarks: ``python -m bench [--quick | --smoke]``.

Results go to ``bench/results/<profile>.json`` (git-ignored) and ``bench/results/REPORT.md``; see
docs/performance.md for what each section measures and the latest findings.
"""

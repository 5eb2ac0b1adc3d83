"""Benchmarks of the supervision runtime in :mod:`supervisors`.

``python -m bench`` (or ``make bench``) runs every bench in turn and
rewrites ``BENCHMARKS.md``; ``python -m bench <name> ...`` runs those
benches and rewrites only their sections; ``python -m bench.<name>`` runs
one bench and only prints its figures. Every bench starts its own actors,
stops all of them before it returns, and ends within a bounded time: a
stuck actor makes it fail on a timeout rather than hang.
"""

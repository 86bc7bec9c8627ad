"""Benchmarks of icehook: ``python -m bench.intake`` and ``python -m bench.reconcile``.

They start real processes on 127.0.0.1 and record their results under ``bench/results/``;
``bench/README.md`` says what each one measures and how to run it.
"""

"""Concurrency harness: workers on one database, barriers, schedules, race findings.

``timeline`` (what each worker sent, when) → ``connections`` (recording worker
connections) and ``backends`` (the server's view: who waits for whom) → ``crew`` (a
run's connections, threads and clean-up) → ``workers`` (the barrier run) and
``schedule`` (one exact interleaving) → ``outcome`` → ``classify`` (Findings) →
``harness`` (arguments, invariant, verdict; ``sessions`` for ORM code) → ``hooks``
(the fixture). ``retry`` holds the retry rule.

Importing this package loads neither psycopg nor SQLAlchemy.
"""

from pytest_dbarch.concurrency.retry import Retry

__all__ = ["Retry"]

"""Query capture, the per-test query log, fingerprints, N+1 detection and query lint.

Nothing here imports SQLAlchemy, psycopg or sqlglot at import time: capture hooks are
installed when a test first runs with those libraries loaded, and sqlglot is loaded on
the first fingerprint cache miss.
"""

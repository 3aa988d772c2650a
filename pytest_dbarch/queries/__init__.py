"""Query capture, the per-test query log, fingerprints, N+1 detection and query lint.

Nothing here imports SQLAlchemy, psycopg, psycopg2, asyncpg or sqlglot at import time:
capture hooks go into each driver when the application imports it (``import_hook``),
and sqlglot is loaded on the first fingerprint cache miss.
"""

"""A deliberately small CRM used to exercise pytest-dbarch end to end.

It has just enough schema (UUID keys, soft deletes, JSONB, partial and GIN
indexes, CHECK constraints, cascading foreign keys) and just enough service
code (commits, aggregates, prefix search) to make the plugin's fixtures and
checks do real work.
"""

"""The rules, grouped by theme; each a pure ``check(schema, options)``."""

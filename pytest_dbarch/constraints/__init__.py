"""Constraint property tests: does the database enforce what the models intend?

hypothesis strategies and factory-boy factories built from the live schema, bulk fills
through COPY, and four checks (valid rows, violators refused, the models' CHECKs
enforced, referential actions) that produce Findings. The pytest face is ``hooks.py``
(the ``dbarch_constraints`` fixture) and ``items.py`` (``constraints[<table>]`` items).
"""

-- (A failed CREATE INDEX CONCURRENTLY cannot run in a transaction: tests/test_schema_lint.py makes one.)
-- case: an index created ON ONLY a partitioned table and never attached
-- status: failed
-- expect: index ix_readings_at on public.readings is invalid (created ON ONLY the parent*
CREATE TABLE readings (at date NOT NULL, value int) PARTITION BY RANGE (at);
CREATE TABLE readings_2024 PARTITION OF readings FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE INDEX ix_readings_at ON ONLY readings (at);

-- case: good twin: attached, the parent's index is valid
CREATE TABLE readings (at date NOT NULL, value int) PARTITION BY RANGE (at);
CREATE TABLE readings_2024 PARTITION OF readings FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE INDEX ix_readings_at ON ONLY readings (at);
CREATE INDEX ix_readings_2024_at ON readings_2024 (at);
ALTER INDEX ix_readings_at ATTACH PARTITION ix_readings_2024_at;

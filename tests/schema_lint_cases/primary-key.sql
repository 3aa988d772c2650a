-- case: table without a primary key
-- status: failed
-- expect: public.events has no primary key
CREATE TABLE events (id bigint, body text);

-- case: a unique index on NOT NULL columns can become the key
-- expect: public.events has no primary key; the unique index events_code_key on NOT NULL columns can become it
CREATE TABLE events (code text NOT NULL UNIQUE, body text);

-- case: a partitioned table is reported once, not per partition
-- expect: public.measurements has no primary key
CREATE TABLE measurements (at date NOT NULL, value int) PARTITION BY RANGE (at);
CREATE TABLE measurements_2024 PARTITION OF measurements FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');

-- case: good twin: keys everywhere; views and materialized views need none
CREATE TABLE events (id bigint PRIMARY KEY, body text);
CREATE TABLE measurements (at date NOT NULL, value int, PRIMARY KEY (at)) PARTITION BY RANGE (at);
CREATE TABLE measurements_2024 PARTITION OF measurements FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE VIEW recent AS SELECT * FROM events;
CREATE MATERIALIZED VIEW totals AS SELECT count(*) AS n FROM events;

-- case: good: a table in a schema an extension was installed into is the tool's (pg_partman's templates)
-- requires: pg_trgm
CREATE SCHEMA partman;
ALTER EXTENSION pg_trgm SET SCHEMA partman;
CREATE TABLE partman.template_public_events (at timestamptz, payload jsonb);

-- case: trap ARD#7: two identical indexes are one finding, not a crash
-- status: warning
-- expect: index thing_fkey on public.others duplicates others_thing_fkey
CREATE TABLE others (id bigint PRIMARY KEY, thing_id bigint);
CREATE INDEX others_thing_fkey ON others USING btree (thing_id);
CREATE INDEX thing_fkey ON others USING btree (thing_id);

-- case: the constraint's index is kept, the plain twin dropped
-- expect: index ux_users_email on public.users duplicates users_email_key
CREATE TABLE users (id bigint PRIMARY KEY, email text UNIQUE);
CREATE UNIQUE INDEX ux_users_email ON users (email);

-- case: materialized views get the same rules (ARD#131)
-- expect: index ix_totals_b on public.totals duplicates ix_totals_a
CREATE TABLE sales (id bigint PRIMARY KEY, region text);
CREATE MATERIALIZED VIEW totals AS SELECT region, count(*) AS n FROM sales GROUP BY region;
CREATE INDEX ix_totals_a ON totals (region);
CREATE INDEX ix_totals_b ON totals (region);

-- case: good twin: same column, different method, operator class, order, predicate or collation
CREATE TABLE users (id bigint PRIMARY KEY, email text, deleted_at timestamptz);
CREATE INDEX a ON users (email);
CREATE INDEX b ON users USING hash (email);
CREATE INDEX c ON users (email text_pattern_ops);
CREATE INDEX d ON users (email DESC);
CREATE INDEX e ON users (email) WHERE deleted_at IS NULL;
CREATE INDEX f ON users (email COLLATE "C");

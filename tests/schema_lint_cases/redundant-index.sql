-- case: a plain index that leads a wider one
-- status: warning
-- expect: index ix_jobs_active_job_id on public.jobs is redundant: ix_jobs_active_job_id_created_at starts with the same keys
CREATE TABLE jobs (id bigint PRIMARY KEY, active_job_id uuid, created_at timestamptz);
CREATE INDEX ix_jobs_active_job_id ON jobs (active_job_id);
CREATE INDEX ix_jobs_active_job_id_created_at ON jobs (active_job_id, created_at);

-- case: ARD#8: a plain index with the keys of a unique one
-- expect: index ix_users_last_name on public.users is redundant: ux_users_last_name starts with the same keys
CREATE TABLE users (id bigint PRIMARY KEY, last_name text);
CREATE INDEX ix_users_last_name ON users (last_name);
CREATE UNIQUE INDEX ux_users_last_name ON users (last_name);

-- case: a duplicate pair and a wider index: the duplicate is reported there, the kept one here
-- expect: index a on public.jobs is redundant: c starts with the same keys
CREATE TABLE jobs (id bigint PRIMARY KEY, x int, y int);
CREATE INDEX a ON jobs (x);
CREATE INDEX b ON jobs (x);
CREATE INDEX c ON jobs (x, y);

-- case: trap ARD#69: a GIN trigram index is not covered by a btree on the same column
-- requires: pg_trgm
CREATE TABLE skus (id bigint PRIMARY KEY, code text, account_id bigint);
CREATE UNIQUE INDEX ux_skus_code_account ON skus (code, account_id);
CREATE INDEX ix_skus_code_trgm ON skus USING gin (code gin_trgm_ops);

-- case: trap ARD#100 and #8 case 2: unique indexes are never redundant
CREATE TABLE users (id bigint PRIMARY KEY, a int, b int);
CREATE UNIQUE INDEX ux_a ON users (a);
CREATE UNIQUE INDEX ux_a_b ON users (a, b);
CREATE INDEX ix_a_b ON users (a, b, id);

-- case: trap pghero#354: a deliberately narrow index beside a wide covering one
CREATE TABLE activities (id bigint PRIMARY KEY, source_id bigint, accounting_date date, activity_type_id int,
    payment_id bigint, activity_id bigint, amount numeric);
CREATE INDEX ix_source ON activities (source_id);
CREATE INDEX ix_source_covering ON activities (source_id, accounting_date, activity_type_id, payment_id, activity_id);
CREATE INDEX ix_payment ON activities (payment_id);
CREATE INDEX ix_payment_covering ON activities (payment_id) INCLUDE (amount);

-- case: trap postgres-checkup H004: attnums compared as arrays, "1 2" is no prefix of "1 23"
CREATE TABLE wide (c1 int PRIMARY KEY, c2 int, c3 int, c4 int, c5 int, c6 int, c7 int, c8 int, c9 int, c10 int,
    c11 int, c12 int, c13 int, c14 int, c15 int, c16 int, c17 int, c18 int, c19 int, c20 int, c21 int, c22 int, c23 int);
CREATE INDEX ix_1_2 ON wide (c1, c2);
CREATE INDEX ix_1_23 ON wide (c1, c23);

-- case: good: different order, partial vs full, different method
CREATE TABLE t (id bigint PRIMARY KEY, a int, b int, deleted_at timestamptz);
CREATE INDEX ix_a ON t (a DESC);
CREATE INDEX ix_a_b ON t (a, b);
CREATE INDEX ix_b_live ON t (b) WHERE deleted_at IS NULL;
CREATE INDEX ix_b_a ON t (b, a);
CREATE INDEX ix_hash_a ON t USING hash (a);

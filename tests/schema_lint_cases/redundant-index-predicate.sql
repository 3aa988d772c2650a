-- case: WHERE col IS NOT NULL on a NOT NULL column
-- expect: index ix_users_email on public.users filters email IS NOT NULL, but email is NOT NULL
CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);
CREATE INDEX ix_users_email ON users (email) WHERE email IS NOT NULL;

-- case: good twin: the column is nullable
CREATE TABLE users (id bigint PRIMARY KEY, email text);
CREATE INDEX ix_users_email ON users (email) WHERE email IS NOT NULL;

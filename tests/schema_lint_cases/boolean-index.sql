-- case: a boolean key column
-- expect: index ix_users_active_email on public.users has boolean key column active
CREATE TABLE users (id bigint PRIMARY KEY, active boolean, email text);
CREATE INDEX ix_users_active_email ON users (active, email);

-- case: good twin: partial index on the rare value
CREATE TABLE users (id bigint PRIMARY KEY, active boolean, email text);
CREATE INDEX ix_users_email_active ON users (email) WHERE active;

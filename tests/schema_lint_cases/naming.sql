-- case: policy: snake_case tables and ix_/ux_ indexes
-- options: {"naming": ["table = ^[a-z][a-z0-9_]*$", "index = ^(ix|ux)_[a-z0-9_]+$"]}
-- expect: table public.UserAccounts does not match the table naming pattern ^[a-z][a-z0-9_]*$
-- expect: index idx_email on public.UserAccounts does not match the index naming pattern ^(ix|ux)_[a-z0-9_]+$
CREATE TABLE "UserAccounts" (id bigint PRIMARY KEY, email text);
CREATE INDEX idx_email ON "UserAccounts" (email);

-- case: good twin: names that match; constraint indexes are judged by their constraint kinds
-- options: {"naming": ["table = ^[a-z][a-z0-9_]*$", "index = ^(ix|ux)_[a-z0-9_]+$"]}
CREATE TABLE user_accounts (id bigint PRIMARY KEY, email text UNIQUE);
CREATE INDEX ix_user_accounts_email ON user_accounts (email);

-- case: an index that keeps soft-deleted rows
-- expect: index ix_contacts_email on public.contacts also indexes soft-deleted rows (deleted_at)
CREATE TABLE accounts (id bigint PRIMARY KEY);
CREATE TABLE contacts (id bigint PRIMARY KEY, account_id bigint REFERENCES accounts, email text, deleted_at timestamptz);
CREATE INDEX ix_contacts_account_id ON contacts (account_id);
CREATE INDEX ix_contacts_email ON contacts (email);

-- case: good twin: partial indexes; the foreign-key index stays full (ON DELETE must see deleted rows)
CREATE TABLE accounts (id bigint PRIMARY KEY);
CREATE TABLE contacts (id bigint PRIMARY KEY, account_id bigint REFERENCES accounts, email text, deleted_at timestamptz);
CREATE INDEX ix_contacts_account_id ON contacts (account_id);
CREATE INDEX ix_contacts_email ON contacts (email) WHERE deleted_at IS NULL;

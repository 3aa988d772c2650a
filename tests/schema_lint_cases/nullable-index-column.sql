-- case: a plain index led by a nullable column
-- expect: index ix_leads_email on public.leads is led by nullable email and also stores its NULLs
CREATE TABLE leads (id bigint PRIMARY KEY, email text);
CREATE INDEX ix_leads_email ON leads (email);

-- case: good twin: partial on the column, NOT NULL column, or unique
CREATE TABLE leads (id bigint PRIMARY KEY, email text, phone text, name text NOT NULL);
CREATE INDEX ix_leads_email ON leads (email) WHERE email IS NOT NULL;
CREATE INDEX ix_leads_name ON leads (name);
CREATE UNIQUE INDEX ux_leads_phone ON leads (phone);

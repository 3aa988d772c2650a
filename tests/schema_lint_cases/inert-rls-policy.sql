-- case: a policy on a table whose row-level security is off
-- status: warning
-- expect: public.documents has 1 row-level security policy but row-level security is off: they are ignored
CREATE TABLE documents (id bigint PRIMARY KEY, owner text);
CREATE POLICY owner_only ON documents USING (owner = current_user);

-- case: good twin: row-level security enabled
CREATE TABLE documents (id bigint PRIMARY KEY, owner text);
ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
CREATE POLICY owner_only ON documents USING (owner = current_user);

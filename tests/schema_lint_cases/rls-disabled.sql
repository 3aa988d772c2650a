-- case: opt-in: a table without row-level security, and one with it but no policy
-- expect: public.documents has row-level security off
-- expect: public.secrets has row-level security on but no policy: only its owner sees rows
CREATE TABLE documents (id bigint PRIMARY KEY, owner text);
CREATE TABLE secrets (id bigint PRIMARY KEY);
ALTER TABLE secrets ENABLE ROW LEVEL SECURITY;

-- case: good twin: enabled, with a policy
CREATE TABLE documents (id bigint PRIMARY KEY, owner text);
ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
CREATE POLICY owner_only ON documents USING (owner = current_user);

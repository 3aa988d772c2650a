-- case: oid column for a large object
-- expect: public.files.content is oid (a large-object reference)
CREATE TABLE files (id bigint PRIMARY KEY, content oid);

-- case: good twin: bytea
CREATE TABLE files (id bigint PRIMARY KEY, content bytea);

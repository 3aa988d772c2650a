-- case: json column
-- expect: public.docs.body is json, not jsonb
CREATE TABLE docs (id bigint PRIMARY KEY, body json);

-- case: good twin: jsonb
CREATE TABLE docs (id bigint PRIMARY KEY, body jsonb);

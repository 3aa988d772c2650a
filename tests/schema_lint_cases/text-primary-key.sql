-- case: a text natural key
-- expect: public.countries.code is the primary key, of type text (probably a natural key)
CREATE TABLE countries (code text PRIMARY KEY, name text);

-- case: good twin: surrogate key, text kept unique
CREATE TABLE countries (id bigint PRIMARY KEY, code text UNIQUE, name text);

-- case: char(n)
-- expect: public.countries.code is char(n) (blank-padded)
CREATE TABLE countries (id bigint PRIMARY KEY, code char(2));

-- case: good twin: text, varchar, and the internal one-byte "char" type
CREATE TABLE countries (id bigint PRIMARY KEY, code text, name varchar(80), flag "char");

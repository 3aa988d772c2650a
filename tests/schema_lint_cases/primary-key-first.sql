-- case: the key is not the first column
-- expect: the primary key (id) of public.notes is not the first column
CREATE TABLE notes (body text, id bigint PRIMARY KEY);

-- case: good twin: composite key in any order at the front
CREATE TABLE notes (id bigint PRIMARY KEY, body text);
CREATE TABLE pairs (b int, a int, note text, PRIMARY KEY (a, b));

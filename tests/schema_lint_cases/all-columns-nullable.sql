-- case: nothing but the key is required
-- expect: all 3 non-key columns of public.notes accept NULL
CREATE TABLE notes (id bigint PRIMARY KEY, title text, body text, author text);

-- case: good twin: one required column is enough; one-column tables are not judged
CREATE TABLE notes (id bigint PRIMARY KEY, title text NOT NULL, body text, author text);
CREATE TABLE tags (id bigint PRIMARY KEY, label text);

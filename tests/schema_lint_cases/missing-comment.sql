-- case: a table without a comment, and a commented table with bare columns
-- expect: public.notes has no comment
-- expect: 1 column of public.tags has no comment
CREATE TABLE notes (id bigint PRIMARY KEY);
CREATE TABLE tags (id bigint PRIMARY KEY, label text);
COMMENT ON TABLE tags IS 'labels users attach';
COMMENT ON COLUMN tags.id IS 'surrogate key';

-- case: good twin: everything described
CREATE TABLE tags (id bigint PRIMARY KEY);
COMMENT ON TABLE tags IS 'labels users attach';
COMMENT ON COLUMN tags.id IS 'surrogate key';

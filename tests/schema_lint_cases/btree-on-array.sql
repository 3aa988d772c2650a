-- case: btree on an array column
-- expect: btree index ix_posts_tags on public.posts has array column tags
CREATE TABLE posts (id bigint PRIMARY KEY, tags text[]);
CREATE INDEX ix_posts_tags ON posts (tags);

-- case: good twin: GIN; a unique btree on an array is kept for its constraint
CREATE TABLE posts (id bigint PRIMARY KEY, tags text[], path int[] UNIQUE);
CREATE INDEX ix_posts_tags ON posts USING gin (tags);

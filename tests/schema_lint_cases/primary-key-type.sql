-- case: integer and smallint keys run out
-- status: warning
-- expect: public.orders.id is the primary key, of type integer: it runs out at 2,147,483,647
-- expect: public.kinds.id is the primary key, of type smallint: it runs out at 32,767
CREATE TABLE orders (id serial PRIMARY KEY);
CREATE TABLE kinds (id smallint PRIMARY KEY);

-- case: good twin: bigint and uuid keys; a join table's keys follow their parents
CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);
CREATE TABLE users (id uuid PRIMARY KEY);
CREATE TABLE tags (id bigint PRIMARY KEY);
CREATE TABLE order_tags (order_id bigint REFERENCES orders, tag_id bigint REFERENCES tags, PRIMARY KEY (order_id, tag_id));

-- case: the join table is silent, its integer parent is not
-- expect: public.tags.id is the primary key, of type integer*
CREATE TABLE tags (id int PRIMARY KEY);
CREATE TABLE posts (id bigint PRIMARY KEY);
CREATE TABLE post_tags (post_id bigint REFERENCES posts, tag_id int REFERENCES tags, PRIMARY KEY (post_id, tag_id));

-- case: policy: only uuid keys allowed
-- options: {"pk_types": "uuid"}
-- expect: public.orders.id is the primary key, of type bigint; the project allows uuid
CREATE TABLE orders (id bigint PRIMARY KEY);
CREATE TABLE users (id uuid PRIMARY KEY);

-- case: good: an integer ordinal inside a composite key is not a counter
CREATE TABLE relations (id bigint PRIMARY KEY);
CREATE TABLE relation_members (relation_id bigint REFERENCES relations, sequence_id int, member text,
    PRIMARY KEY (relation_id, sequence_id));

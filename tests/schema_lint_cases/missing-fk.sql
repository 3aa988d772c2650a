-- case: a <thing>_id column beside a <things> table without a foreign key
-- status: warning
-- expect: public.orders.customer_id looks like a reference to public.customers but has no foreign key
-- expect: public.orders.category_id looks like a reference to public.categories but has no foreign key
CREATE TABLE customers (id bigint PRIMARY KEY);
CREATE TABLE categories (id int PRIMARY KEY);
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint, category_id int);

-- case: good twin: declared foreign keys
CREATE TABLE customers (id bigint PRIMARY KEY);
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint REFERENCES customers);

-- case: good: no such table, another key type, a polymorphic pair, an external id
CREATE TABLE users (id uuid PRIMARY KEY);
CREATE TABLE comments (id bigint PRIMARY KEY, owner_id uuid, user_id bigint, commentable_id bigint,
    commentable_type text, stripe_id text);

-- case: good: history tables keep rows of deleted subjects; a table's own name is not a self-reference
CREATE TABLE posts (id bigint PRIMARY KEY);
CREATE TABLE post_versions (id bigint PRIMARY KEY, post_id bigint);
CREATE TABLE reactions (id bigint PRIMARY KEY, reaction_id int);

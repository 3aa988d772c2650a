-- case: the same reference declared twice
-- expect: foreign key orders_customer_twin on public.orders repeats orders_customer_id_fkey
CREATE TABLE customers (id bigint PRIMARY KEY);
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint REFERENCES customers);
ALTER TABLE orders ADD CONSTRAINT orders_customer_twin FOREIGN KEY (customer_id) REFERENCES customers (id);

-- case: good twin: two columns referencing the same table are different references
CREATE TABLE users (id bigint PRIMARY KEY);
CREATE TABLE tickets (id bigint PRIMARY KEY, author_id bigint REFERENCES users, assignee_id bigint REFERENCES users);

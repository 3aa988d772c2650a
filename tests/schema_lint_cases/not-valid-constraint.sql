-- case: a CHECK and a foreign key added NOT VALID and never validated
-- expect: check orders_total_positive on public.orders is NOT VALID (existing rows never checked)
-- expect: foreign key orders_customer_fk on public.orders is NOT VALID (existing rows never checked)
CREATE TABLE customers (id bigint PRIMARY KEY);
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint, total numeric);
ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total > 0) NOT VALID;
ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers NOT VALID;

-- case: good twin: validated afterwards
CREATE TABLE orders (id bigint PRIMARY KEY, total numeric);
ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total > 0) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_total_positive;

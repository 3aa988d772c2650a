-- case: a nullable column in a MATCH SIMPLE composite key
-- expect: foreign key lines_order_id_tenant_id_fkey (order_id, tenant_id) on public.lines is not checked when tenant_id is NULL
CREATE TABLE orders (id bigint, tenant_id int, PRIMARY KEY (id, tenant_id));
CREATE TABLE lines (id bigint PRIMARY KEY, order_id bigint NOT NULL, tenant_id int,
    FOREIGN KEY (order_id, tenant_id) REFERENCES orders);

-- case: good: MATCH FULL, NOT NULL columns, or a CHECK tying the NULLs together
CREATE TABLE orders (id bigint, tenant_id int, PRIMARY KEY (id, tenant_id));
CREATE TABLE a (id bigint PRIMARY KEY, order_id bigint, tenant_id int,
    FOREIGN KEY (order_id, tenant_id) REFERENCES orders MATCH FULL);
CREATE TABLE b (id bigint PRIMARY KEY, order_id bigint NOT NULL, tenant_id int NOT NULL,
    FOREIGN KEY (order_id, tenant_id) REFERENCES orders);
CREATE TABLE c (id bigint PRIMARY KEY, order_id bigint, tenant_id int,
    CHECK (num_nulls(order_id, tenant_id) IN (0, 2)),
    FOREIGN KEY (order_id, tenant_id) REFERENCES orders);

-- case: an integer key referencing a bigint key is narrower
-- status: failed
-- expect: public.orders.customer_id is integer but references public.customers.id (bigint)
CREATE TABLE customers (id bigint PRIMARY KEY);
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id integer REFERENCES customers);

-- case: a wider column or another length is a warning
-- status: warning
-- expect: public.orders.customer_id is bigint but references public.customers.id (integer)
-- expect: public.orders.region is character varying(10) but references public.regions.code (character varying(20))
CREATE TABLE customers (id integer PRIMARY KEY);
CREATE TABLE regions (code varchar(20) PRIMARY KEY);
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint REFERENCES customers, region varchar(10) REFERENCES regions);

-- case: good twin: the same types
CREATE TABLE customers (id bigint PRIMARY KEY);
CREATE TABLE regions (code varchar(20) PRIMARY KEY);
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint REFERENCES customers, region varchar(20) REFERENCES regions);

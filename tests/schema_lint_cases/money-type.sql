-- case: money column
-- expect: public.invoices.total is money
CREATE TABLE invoices (id bigint PRIMARY KEY, total money);

-- case: good twin: numeric
CREATE TABLE invoices (id bigint PRIMARY KEY, total numeric(12, 2));

-- case: the same column name with two types
-- expect: column account_ref has 2 types across tables (bigint, text)
CREATE TABLE invoices (id bigint PRIMARY KEY, account_ref bigint);
CREATE TABLE payments (id bigint PRIMARY KEY, account_ref text);

-- case: good twin: one type
CREATE TABLE invoices (id bigint PRIMARY KEY, account_ref bigint);
CREATE TABLE payments (id bigint PRIMARY KEY, account_ref bigint);

-- case: a table with no foreign key in or out
-- expect: public.settings has no foreign key to or from another table
CREATE TABLE accounts (id bigint PRIMARY KEY);
CREATE TABLE contacts (id bigint PRIMARY KEY, account_id bigint REFERENCES accounts);
CREATE TABLE settings (id bigint PRIMARY KEY, value text);

-- case: good twin: linked both ways
CREATE TABLE accounts (id bigint PRIMARY KEY);
CREATE TABLE contacts (id bigint PRIMARY KEY, account_id bigint REFERENCES accounts);

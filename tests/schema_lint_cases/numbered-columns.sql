-- case: phone1, phone2
-- expect: public.people has repeating columns phone1, phone2
CREATE TABLE people (id bigint PRIMARY KEY, phone1 text, phone2 text, ipv4 text);

-- case: good twin: one numbered column is a name, not a group
CREATE TABLE people (id bigint PRIMARY KEY, phone text, address_line1 text, ipv4 inet, sha256 text);

-- case: a one-column table
-- expect: public.flags has 1 column
CREATE TABLE flags (name text PRIMARY KEY);

-- case: good twin: two columns
CREATE TABLE flags (name text PRIMARY KEY, enabled boolean NOT NULL);

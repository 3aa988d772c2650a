-- case: policy text: varchar(n) is reported
-- options: {"strings": "text"}
-- expect: public.users.name is character varying(80); the project uses text (with a CHECK for a limit)
CREATE TABLE users (id bigint PRIMARY KEY, name varchar(80), bio text);

-- case: policy varchar: unbounded strings are reported
-- options: {"strings": "varchar"}
-- expect: public.users.bio is text; the project gives every string a maximum length
CREATE TABLE users (id bigint PRIMARY KEY, name varchar(80), bio text);

-- case: good: policy any (the default) says nothing
CREATE TABLE users (id bigint PRIMARY KEY, name varchar(80), bio text);

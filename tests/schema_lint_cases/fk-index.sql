-- case: foreign key without an index
-- status: warning
-- expect: public.contacts(account_id) has no index for foreign key contacts_account_id_fkey to public.accounts
CREATE TABLE accounts (id bigint PRIMARY KEY);
CREATE TABLE contacts (id bigint PRIMARY KEY, account_id bigint REFERENCES accounts);

-- case: an index led by another column does not cover it
-- expect: public.contacts(account_id) has no index for foreign key *
CREATE TABLE accounts (id bigint PRIMARY KEY);
CREATE TABLE contacts (id bigint PRIMARY KEY, account_id bigint REFERENCES accounts, email text);
CREATE INDEX ix_contacts_email_account ON contacts (email, account_id);

-- case: a partial index with another condition, or an invalid-prone expression index, does not cover it
-- expect: public.contacts(account_id) has no index for foreign key *
CREATE TABLE accounts (id bigint PRIMARY KEY);
CREATE TABLE contacts (id bigint PRIMARY KEY, account_id bigint REFERENCES accounts, deleted_at timestamptz);
CREATE INDEX ix_live ON contacts (account_id) WHERE deleted_at IS NULL;
CREATE INDEX ix_expr ON contacts ((account_id + 0));

-- case: good twin: a plain index on the key
CREATE TABLE accounts (id bigint PRIMARY KEY);
CREATE TABLE contacts (id bigint PRIMARY KEY, account_id bigint REFERENCES accounts);
CREATE INDEX ix_contacts_account_id ON contacts (account_id);

-- case: good: composite key covered in any order, and by a wider index
CREATE TABLE parents (a int, b int, PRIMARY KEY (a, b));
CREATE TABLE children (id bigint PRIMARY KEY, a int, b int, c int, FOREIGN KEY (a, b) REFERENCES parents);
CREATE INDEX ix_children_b_a_c ON children (b, a, c);

-- case: good: a partial index WHERE key IS NOT NULL serves every lookup
CREATE TABLE accounts (id bigint PRIMARY KEY);
CREATE TABLE contacts (id bigint PRIMARY KEY, account_id bigint REFERENCES accounts);
CREATE INDEX ix_contacts_account_id ON contacts (account_id) WHERE account_id IS NOT NULL;

-- case: trap ARD#156: the foreign key is the primary key itself
CREATE TABLE users (id bigint PRIMARY KEY);
CREATE TABLE profiles (user_id bigint PRIMARY KEY REFERENCES users);

-- case: trap ARD#212: a composite primary key covers its leading column; the second needs its own index
-- expect: public.memberships(group_id) has no index for foreign key *
CREATE TABLE users (id bigint PRIMARY KEY);
CREATE TABLE groups (id bigint PRIMARY KEY);
CREATE TABLE memberships (user_id bigint REFERENCES users, group_id bigint REFERENCES groups, PRIMARY KEY (user_id, group_id));

-- case: good twin of ARD#212: the second column has its index
CREATE TABLE users (id bigint PRIMARY KEY);
CREATE TABLE groups (id bigint PRIMARY KEY);
CREATE TABLE memberships (user_id bigint REFERENCES users, group_id bigint REFERENCES groups, PRIMARY KEY (user_id, group_id));
CREATE INDEX ix_memberships_group_id ON memberships (group_id);

-- case: good: a GiST exclusion constraint on btree_gist operator classes covers the key
-- requires: btree_gist
CREATE TABLE rooms (id int PRIMARY KEY);
CREATE TABLE bookings (id int PRIMARY KEY, room_id int REFERENCES rooms, during tstzrange,
    EXCLUDE USING gist (room_id WITH =, during WITH &&));

-- case: partitioned table: the index on the parent covers it; a missing one is reported once
-- expect: public.readings(sensor_id) has no index for foreign key *
CREATE TABLE sensors (id int PRIMARY KEY);
CREATE TABLE readings (sensor_id int REFERENCES sensors, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE readings_2024 PARTITION OF readings FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');

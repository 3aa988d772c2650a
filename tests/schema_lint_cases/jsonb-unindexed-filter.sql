-- case: filters by key, containment and key existence without indexes
-- query: SELECT id FROM contacts WHERE custom_fields ->> 'department' = 'Engineering'
-- query: SELECT c.id FROM contacts AS c WHERE c.custom_fields @> '{"vip": true}'::jsonb
-- query: SELECT id FROM contacts WHERE tags ? 'new'
-- status: warning
-- expect: public.contacts.custom_fields is filtered by custom_fields ->> 'department' = in the application's queries, with no index for it
-- expect: public.contacts.custom_fields is filtered by custom_fields @> in the application's queries, with no index for it
-- expect: public.contacts.tags is filtered by tags ? in the application's queries, with no index for it
CREATE TABLE contacts (id bigint PRIMARY KEY, custom_fields jsonb, tags jsonb);

-- case: a GIN index does not serve ->> filters; jsonb_path_ops does not serve ?
-- query: SELECT id FROM contacts WHERE custom_fields ->> 'department' = 'Engineering'
-- query: SELECT id FROM contacts WHERE tags ? 'new'
-- expect: public.contacts.custom_fields is filtered by custom_fields ->> 'department' =*
-- expect: public.contacts.tags is filtered by tags ?*
CREATE TABLE contacts (id bigint PRIMARY KEY, custom_fields jsonb, tags jsonb);
CREATE INDEX ix_contacts_custom_fields_gin ON contacts USING gin (custom_fields);
CREATE INDEX ix_contacts_tags_gin ON contacts USING gin (tags jsonb_path_ops);

-- case: good twin: the seed's indexing strategies
-- query: SELECT id FROM contacts WHERE custom_fields ->> 'department' = 'Engineering'
-- query: SELECT id FROM contacts WHERE custom_fields -> 'address' ->> 'city' = 'Oslo'
-- query: SELECT c.id FROM contacts AS c WHERE c.custom_fields @> '{"vip": true}'::jsonb
-- query: SELECT id FROM contacts WHERE tags ? 'new'
CREATE TABLE contacts (id bigint PRIMARY KEY, custom_fields jsonb, tags jsonb);
CREATE INDEX ix_contacts_department ON contacts ((custom_fields ->> 'department'));
CREATE INDEX ix_contacts_city ON contacts (((custom_fields -> 'address') ->> 'city'));
CREATE INDEX ix_contacts_custom_fields_gin ON contacts USING gin (custom_fields jsonb_path_ops);
CREATE INDEX ix_contacts_tags_gin ON contacts USING gin (tags);

-- case: good: json selected or updated, not filtered; text columns are not JSONB
-- query: SELECT custom_fields ->> 'department' FROM contacts WHERE id = 1
-- query: SELECT id FROM contacts WHERE note = 'x'
CREATE TABLE contacts (id bigint PRIMARY KEY, custom_fields jsonb, note text);

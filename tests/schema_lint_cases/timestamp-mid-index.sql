-- case: a timestamp between two keys
-- expect: index ix_events_user_at_kind on public.events has timestamp at in the middle of its keys
CREATE TABLE events (id bigint PRIMARY KEY, user_id bigint, at timestamptz, kind text);
CREATE INDEX ix_events_user_at_kind ON events (user_id, at, kind);

-- case: good twin: the timestamp last
CREATE TABLE events (id bigint PRIMARY KEY, user_id bigint, at timestamptz, kind text);
CREATE INDEX ix_events_user_kind_at ON events (user_id, kind, at);

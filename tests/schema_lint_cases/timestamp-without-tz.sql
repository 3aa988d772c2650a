-- case: timestamp and timetz columns
-- expect: public.events.created_at is timestamp without time zone
-- expect: public.events.seen is timestamp without time zone
-- expect: public.events.opens is time with time zone
CREATE TABLE events (id bigint PRIMARY KEY, created_at timestamp, seen timestamp(3)[], opens timetz);

-- case: good twin: timestamptz, date and time of day
CREATE TABLE events (id bigint PRIMARY KEY, created_at timestamptz, day date, opens time);

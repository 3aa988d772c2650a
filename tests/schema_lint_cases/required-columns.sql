-- case: policy: created_at and updated_at as timestamptz
-- options: {"required_columns": "created_at:timestamptz updated_at:timestamptz"}
-- expect: public.notes has no updated_at column
-- expect: public.notes.created_at is timestamp without time zone; the project requires timestamptz
CREATE TABLE notes (id bigint PRIMARY KEY, created_at timestamp);

-- case: good twin: both present
-- options: {"required_columns": "created_at:timestamptz updated_at:timestamptz"}
CREATE TABLE notes (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL);

-- case: good: without the policy the rule is off
CREATE TABLE notes (id bigint PRIMARY KEY);

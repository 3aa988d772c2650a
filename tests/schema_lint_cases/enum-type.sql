-- case: native enum column
-- expect: public.tickets.state uses the enum type ticket_state
CREATE TYPE ticket_state AS ENUM ('open', 'closed');
CREATE TABLE tickets (id bigint PRIMARY KEY, state ticket_state);

-- case: good twin: text with a CHECK
CREATE TABLE tickets (id bigint PRIMARY KEY, state text CHECK (state IN ('open', 'closed')));

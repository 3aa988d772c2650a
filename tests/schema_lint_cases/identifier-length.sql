-- case: a name cut at 63 bytes
-- status: warning
-- expect: column public.events.a_column_name_that_goes_on_and_on_well_past_the_sixty_three_byt: the name is 63 bytes*
CREATE TABLE events (id bigint PRIMARY KEY,
    a_column_name_that_goes_on_and_on_well_past_the_sixty_three_byte_limit text);

-- case: good twin: a short name
CREATE TABLE events (id bigint PRIMARY KEY, a_short_name text);

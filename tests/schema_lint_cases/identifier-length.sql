-- case: an index name PostgreSQL cut at 63 bytes
-- status: warning
-- expect: index index_events_on_first_long_column_name_and_second_long_column_n on public.events has a name cut at 63 bytes, PostgreSQL's limit
CREATE TABLE events (id bigint PRIMARY KEY, first_long_column_name text, second_long_column_name text);
CREATE INDEX index_events_on_first_long_column_name_and_second_long_column_name ON events
    (first_long_column_name, second_long_column_name);

-- case: good twin: a name of exactly 63 bytes chosen by its author (danbooru), and names PostgreSQL generated
CREATE TABLE artist_commentaries (id bigint PRIMARY KEY, translated_description text,
    a_long_column_name_that_makes_generated_names_long text UNIQUE);
CREATE INDEX index_artist_commentaries_on_to_tsvector_translated_description ON artist_commentaries
    USING gin (to_tsvector('english', translated_description));

-- case: classic inheritance
-- status: warning
-- expect: public.cities_capital inherits from public.cities
CREATE TABLE cities (id bigint PRIMARY KEY, name text);
CREATE TABLE cities_capital (state text) INHERITS (cities);

-- case: good twin: declarative partitioning is not inheritance
CREATE TABLE cities (id bigint, name text, region text NOT NULL) PARTITION BY LIST (region);
CREATE TABLE cities_north PARTITION OF cities FOR VALUES IN ('north');

-- case: opt-in: a function resolving names with the caller's search_path
-- expect: function public.total() has a mutable search_path
CREATE FUNCTION total() RETURNS int LANGUAGE sql AS 'SELECT 1';

-- case: good twin: pinned
CREATE FUNCTION total() RETURNS int LANGUAGE sql SET search_path = pg_catalog AS 'SELECT 1';

-- case: SECURITY DEFINER without search_path
-- status: warning
-- expect: SECURITY DEFINER function public.grant_admin(uid bigint) does not set search_path
CREATE FUNCTION grant_admin(uid bigint) RETURNS void LANGUAGE sql SECURITY DEFINER AS 'SELECT 1';

-- case: good twin: search_path pinned; an ordinary function is not this rule's concern
CREATE FUNCTION grant_admin(uid bigint) RETURNS void LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp AS 'SELECT 1';
CREATE FUNCTION plain() RETURNS int LANGUAGE sql AS 'SELECT 1';

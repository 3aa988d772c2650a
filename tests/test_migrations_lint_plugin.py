"""The lint as a user sees it: ``lint_sql`` in a test on a cloned database, the
``dbarch_migration_lint_ignore`` setting, findings in the terminal summary."""

from __future__ import annotations

import pytest


def test_lint_sql_in_a_user_test(external_pytester: pytest.Pytester) -> None:
    external_pytester.makefile(".sql", schema="CREATE TABLE contacts (id int PRIMARY KEY, email text);\n")
    external_pytester.makeini(
        "[pytest]\n"
        "dbarch_sql_files = schema.sql\n"
        "dbarch_migration_lint_ignore =\n"
        "    require-statement-timeout\n"
        "    migrations.lint.prefer-text-field\n"
    )
    external_pytester.makepyfile(
        """
        import pytest
        from pytest_dbarch.migrations.lint import LockReport, LockSafetyLint, lint_sql
        from pytest_dbarch.stash import SETTINGS

        MIGRATION = '''
        SET lock_timeout = '2s';
        ALTER TABLE contacts ADD COLUMN status varchar(20);
        CREATE INDEX ix_contacts_email ON contacts (email);
        '''

        @pytest.mark.dbarch(isolation="clone")
        def test_migration(request, dbarch_psycopg, dbarch_findings):
            dbarch_psycopg.execute("INSERT INTO contacts VALUES (1, 'a@example.com')")
            dbarch_psycopg.commit()
            settings = request.config.stash[SETTINGS]
            observers = [LockSafetyLint(settings), LockReport(settings)]
            findings = lint_sql(dbarch_psycopg, MIGRATION, "0005_status", observers=observers)
            for finding in findings:
                dbarch_findings.add(finding)
            problems = sorted(f.rule for f in findings if f.is_problem)
            assert problems == ["migrations.lint.index-after-exclusive-lock",
                                "migrations.lint.require-concurrent-index-creation"], problems
        """
    )
    result = external_pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*FAIL [[]migrations.lint.require-concurrent-index-creation[]] ix_contacts_email: CREATE INDEX without "
            "CONCURRENTLY on an existing table at 0005_status:4",
            "*fix: CREATE INDEX CONCURRENTLY*",
        ]
    )


def test_unknown_rule_in_the_setting_is_one_clear_error(external_pytester: pytest.Pytester) -> None:
    external_pytester.makeini("[pytest]\ndbarch_migration_lint_ignore = set-not-nul\n")
    external_pytester.makepyfile(
        """
        from pytest_dbarch.errors import DbarchError
        from pytest_dbarch.migrations.lint import LockSafetyLint
        from pytest_dbarch.stash import SETTINGS

        def test_settings(request):
            try:
                LockSafetyLint(request.config.stash[SETTINGS])
            except DbarchError as exc:
                print("ERROR:", exc)
        """
    )
    result = external_pytester.runpytest("-s")
    result.stdout.fnmatch_lines(
        [
            "*ERROR: dbarch_migration_lint_ignore names unknown rule(s): set-not-nul",
            "*fix: use ids from:*set-not-null*",
        ]
    )

#!/usr/bin/python3
"""Every migration of every component keeps the previous release working.

The folders: each demo service's (node/services/*/migrations) and each
example's (examples/*/migrations); a service's migrations are its own
sequence (shoal_migrations), but the rule is the same for all.

During a rolling deploy old and new nodes serve together, and on Kubernetes
the migration Job runs while the old nodes still serve. So a migration may
only expand the schema (new tables, new nullable or defaulted columns, new
indexes, new functions). Whatever removes or changes something the previous
release reads or writes (dropping or renaming a table or column, changing a
column's type, making a column NOT NULL, adding a NOT NULL column without a
default, dropping a default) is a contract step: it goes in its own later
release, once no running node uses the old shape, and its file says so in a
line `-- contract: <what no longer uses it, and since which release>`.

This test finds contract statements in files without that line, and checks
itself on examples of each kind. No servers; docs/scaling.md explains the
rule (rolling deploys).
"""
import glob
import os
import re
import sys
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
MIGRATION_FOLDERS = ["node/services/*/migrations", "examples/*/migrations"]
# The components that must be found: a folder moved or renamed fails the
# test instead of silently leaving the rule with nothing to check.
EXPECTED = ["node/services/conduit/migrations", "node/services/techempower/migrations",
            "examples/hello/migrations"]

CONTRACT_MARK = re.compile(r"^\s*--\s*contract:\s*\S", re.MULTILINE | re.IGNORECASE)
RULES = [
    ("drops a table", re.compile(r"\bDROP\s+TABLE\b", re.IGNORECASE)),
    ("drops a column", re.compile(r"\bDROP\s+COLUMN\b", re.IGNORECASE)),
    ("drops a column (DROP without COLUMN)", re.compile(
        r"\bALTER\s+TABLE\b[^;]*?\bDROP\s+(?!COLUMN\b|CONSTRAINT\b|DEFAULT\b|NOT\b|IDENTITY\b|EXPRESSION\b)"
        r"(?:IF\s+EXISTS\s+)?\"?\w", re.IGNORECASE)),
    ("renames", re.compile(r"\bRENAME\b", re.IGNORECASE)),
    ("changes a column's type", re.compile(r"\bALTER\s+(?:COLUMN\s+)?\"?\w+\"?\s+(?:SET\s+DATA\s+)?TYPE\b",
                                           re.IGNORECASE)),
    ("makes a column NOT NULL", re.compile(r"\bSET\s+NOT\s+NULL\b", re.IGNORECASE)),
    ("drops a default", re.compile(r"\bDROP\s+DEFAULT\b", re.IGNORECASE)),
    ("drops a view, function or type", re.compile(r"\bDROP\s+(?:VIEW|MATERIALIZED\s+VIEW|FUNCTION|TYPE)\b",
                                                  re.IGNORECASE)),
]
ADD_COLUMN = re.compile(r"\bADD\s+(?:COLUMN\s+)?(?:IF\s+NOT\s+EXISTS\s+)?\"?\w+\"?\s+([^,;]*)", re.IGNORECASE)


def strip_comments(sql):
    sql = re.sub(r"/\*.*?\*/", " ", sql, flags=re.DOTALL)
    return re.sub(r"--[^\n]*", " ", sql)


def contract_statements(sql):
    """What the SQL does that the previous release may not survive."""
    if CONTRACT_MARK.search(sql):
        return []
    text = strip_comments(sql)
    found = [what for what, rule in RULES if rule.search(text)]
    for statement in re.findall(r"\bALTER\s+TABLE\b[^;]*", text, re.IGNORECASE):
        for definition in ADD_COLUMN.findall(statement):
            if re.search(r"\bNOT\s+NULL\b", definition, re.IGNORECASE) and \
                    not re.search(r"\bDEFAULT\b", definition, re.IGNORECASE) and \
                    not re.match(r"\s*CONSTRAINT\b", definition, re.IGNORECASE):
                found.append("adds a NOT NULL column without a default")
    return found


class MigrationsExpandOnly(unittest.TestCase):
    def test_every_migration_expands_or_says_it_contracts(self):
        folders = sorted(folder for pattern in MIGRATION_FOLDERS
                         for folder in glob.glob(os.path.join(REPO, pattern)))
        for expected in EXPECTED:
            self.assertIn(os.path.join(REPO, expected), folders, "no migrations folder " + expected)
        files = []
        for folder in folders:
            found = sorted(glob.glob(os.path.join(folder, "*.sql")))
            self.assertGreater(len(found), 0, "no migrations found in " + os.path.relpath(folder, REPO))
            files.extend(found)
        for path in files:
            with open(path) as f:
                found = contract_statements(f.read())
            self.assertEqual(found, [], "%s %s: a contract step needs its own release and a "
                                        "'-- contract: ...' line (tests/unit/store/migrations_rule_test.py)"
                             % (os.path.relpath(path, REPO), ", ".join(found)))

    def test_the_rule_catches_each_contract_step(self):
        contract = [
            "DROP TABLE articles;",
            "ALTER TABLE users DROP COLUMN bio;",
            "ALTER TABLE users DROP bio;",
            "ALTER TABLE users DROP IF EXISTS bio;",
            "ALTER TABLE users RENAME COLUMN bio TO about;",
            "ALTER TABLE users RENAME TO people;",
            "ALTER TABLE users ALTER COLUMN bio TYPE varchar(100);",
            "ALTER TABLE users ALTER bio SET DATA TYPE text;",
            "ALTER TABLE users ALTER COLUMN bio SET NOT NULL;",
            "ALTER TABLE users ALTER COLUMN bio DROP DEFAULT;",
            "ALTER TABLE users ADD COLUMN karma integer NOT NULL;",
            "ALTER TABLE users ADD karma integer NOT NULL, ADD x int;",
            "DROP VIEW article_list;",
            "DROP FUNCTION bump();",
        ]
        for sql in contract:
            self.assertNotEqual(contract_statements(sql), [], sql)
            marked = "-- contract: nothing reads it since release 0.3\n" + sql
            self.assertEqual(contract_statements(marked), [], marked)

    def test_the_rule_lets_expansion_through(self):
        expand = [
            "CREATE TABLE tags (id bigserial PRIMARY KEY, name text NOT NULL UNIQUE);",
            "ALTER TABLE users ADD COLUMN karma integer NOT NULL DEFAULT 0;",
            "ALTER TABLE users ADD COLUMN about text;",
            "ALTER TABLE users ADD CONSTRAINT users_karma CHECK (karma >= 0) NOT VALID;",
            "ALTER TABLE users ALTER COLUMN karma SET DEFAULT 0;",
            "ALTER TABLE users DROP CONSTRAINT users_old_check;",
            "CREATE INDEX articles_created ON articles (created_at);",
            "-- DROP TABLE users; in a comment is not a statement\nCREATE TABLE x (a int);",
            "CREATE OR REPLACE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql;",
        ]
        for sql in expand:
            self.assertEqual(contract_statements(sql), [], sql)


if __name__ == "__main__":
    unittest.main()

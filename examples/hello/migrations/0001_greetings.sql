-- 0001: hello's own table, in its own sequence (component "hello" in
-- shoal_migrations): a node serving only hello gets this table and none of
-- the demo's. Later migrations add 0002_..., 0003_...: expand only (new
-- tables, new nullable or defaulted columns), so that the previous release
-- keeps working during a rolling deploy (docs/scaling.md).
CREATE TABLE greetings (
    name text PRIMARY KEY CONSTRAINT greetings_name_length CHECK (length(name) BETWEEN 1 AND 200),
    greeted bigint NOT NULL DEFAULT 0,
    last_greeted_at timestamptz NOT NULL DEFAULT now()
);

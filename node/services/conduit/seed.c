/* node/services/conduit/seed.c: the Conduit data set, generated inside PostgreSQL.
 *
 * Every choice is pg_temp.seed_unit(purpose, a, b): a hash of the seed, a
 * purpose number (one per decision, listed where it is used) and up to two
 * ordinals, mapped to [0, 1). Rows are made from ordinals (user n, article
 * n, the j-th follow of a user ...), and ordinals are mapped to ids through
 * the temporary tables seed_user and seed_article, filled from each
 * INSERT's RETURNING, so the data set does not depend on which ids the
 * identities hand out. */
#include "seed.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

/* Whatever the statement, seeding 100,000 articles sorts and hashes tens
 * of megabytes; the defaults (4 MB, 8 MB) would spill to disk. */
static const char session_settings[] = "SET work_mem = '64MB'; SET temp_buffers = '64MB'; SET jit = off";

/* Skewed choices: 1 + floor(n * u^e) puts most draws on small ordinals
 * (exponent 3: the first 1 % of users write about a fifth of the articles),
 * which is how authorship, popularity and tags are spread in real sites.
 * seed_ms: a whole number of milliseconds within span, as the API shows
 * milliseconds. */
static const char helper_functions[] =
    "CREATE FUNCTION pg_temp.seed_pick(words text[], u float8) RETURNS text LANGUAGE sql IMMUTABLE"
    " AS 'SELECT $1[1 + floor($2 * cardinality($1))::int]';"
    "CREATE FUNCTION pg_temp.seed_skewed(u float8, n int, e float8) RETURNS int LANGUAGE sql IMMUTABLE"
    " AS 'SELECT least($2, 1 + floor($2 * power($1, $3))::int)';"
    "CREATE FUNCTION pg_temp.seed_ms(u float8, span interval) RETURNS interval LANGUAGE sql IMMUTABLE"
    " AS 'SELECT floor($1 * extract(epoch FROM $2)::float8 * 1000) * interval ''1 millisecond''';";

/* Sizes, from the options (the parameters of one INSERT). */
static const char create_sizes[] =
    "CREATE TEMP TABLE seed_sizes (users int, articles int, width int, follows float8, favorites float8)"
    " ON COMMIT DROP";
static const char insert_sizes[] = "INSERT INTO seed_sizes VALUES ($1, $2, $3, $4, $5)";

/* The vocabulary every text is made of, and the day timestamps count back
 * from. The tags must stay STORE_SEED_TAGS long (the test checks). */
static const char create_words[] =
    "CREATE TEMP TABLE seed_words ON COMMIT DROP AS SELECT "
    "date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS anchor,"
    "ARRAY['scale', 'cache', 'test', 'profile', 'debug', 'deploy', 'secure', 'monitor', 'shard', 'benchmark',"
    " 'refactor', 'document', 'migrate', 'index', 'tune', 'observe'] AS verbs,"
    "ARRAY['connection pools', 'session tokens', 'rate limiters', 'write-ahead logs', 'slow queries',"
    " 'hot paths', 'feature flags', 'background jobs', 'error envelopes', 'keep-alive connections',"
    " 'cache keys', 'load balancers', 'read replicas', 'schema migrations', 'memory arenas', 'retry storms',"
    " 'tail latencies', 'idempotency keys', 'JSON parsers', 'thread pools', 'prepared statements',"
    " 'health checks', 'pub/sub channels', 'database indexes'] AS nouns,"
    "ARRAY['PostgreSQL', 'Redis', 'HAProxy', 'nginx', 'C', 'Rust', 'Go', 'Python', 'Flask', 'Linux',"
    " 'Docker', 'Kubernetes', 'libpq', 'SQLite', 'Kafka', 'a single core'] AS techs,"
    "ARRAY['Practical', 'Boring', 'Fast', 'Honest', 'Small', 'Careful', 'Pragmatic', 'Gentle', 'Surprising',"
    " 'Robust'] AS adjectives,"
    "ARRAY['what we got wrong', 'lessons from a year of on-call', 'a field report', 'the numbers',"
    " 'a postmortem', 'notes from the trenches', 'the short version', 'the trade-offs'] AS lessons,"
    "ARRAY['matter more than you think', 'are harder than they look', 'fail under load',"
    " 'deserve a second look', 'are rarely the bottleneck', 'need an owner'] AS verdicts,"
    "ARRAY['Three', 'Five', 'Seven', 'Ten', 'Twelve'] AS numbers,"
    "ARRAY['A walk through the trade-offs, with numbers from a small cluster.',"
    " 'What we measured, what we changed, and what we would do again.',"
    " 'Everything I wish someone had told me before the first outage.',"
    " 'A short read for anyone who runs this in production.',"
    " 'The design, the mistakes and the fix, in that order.',"
    " 'Why the obvious approach was slow and what replaced it.',"
    " 'A checklist we now follow before every release.',"
    " 'Benchmarks, caveats and a few opinions.',"
    " 'How a tiny change cut our p99 in half.',"
    " 'Notes from migrating a busy service without downtime.',"
    " 'The pattern, when to use it, and when not to.',"
    " 'A gentle introduction with runnable examples.'] AS descriptions,"
    "ARRAY['Most of the time the database is not the problem; the way we talk to it is.',"
    " 'We started by measuring, because every guess we had made before had been wrong.',"
    " 'The first version was simple, correct and about ten times too slow.',"
    " 'A connection that is opened per request costs more than the query it runs.',"
    " 'Caching helped, but only after we decided who was allowed to invalidate what.',"
    " 'The graphs looked fine on average and terrible at the 99th percentile.',"
    " 'Nothing in the logs explained it, so we added one counter and waited.',"
    " 'It turned out that two retries on every layer meant eight attempts at the bottom.',"
    " 'Batching the writes removed most of the round trips and all of the lock waits.',"
    " 'We kept the old path behind a flag for a week, then deleted it.',"
    " 'The fix was three lines; finding them took two days.',"
    " 'Every queue needs a bound, or it becomes a memory leak with extra steps.',"
    " 'Timeouts belong on every call that leaves the process.',"
    " 'A health check that touches every dependency will take the whole fleet down at once.',"
    " 'Prepared statements saved a surprising amount of CPU on the database side.',"
    " 'We load-tested with production-like data, which changed every conclusion.',"
    " 'Small, boring releases were the single biggest improvement to our uptime.',"
    " 'The hardest part was deciding what not to build.',"
    " 'Reading the source of the library answered what the documentation did not.',"
    " 'Our alerts now page on symptoms that users feel, not on causes.',"
    " 'The benchmark ran on the same two cores as the server, so we report both.',"
    " 'Tail latency is where the interesting problems live.',"
    " 'A sorted index made the page query cheap no matter how deep the offset went.',"
    " 'We wrote the runbook before the feature, and it showed.',"
    " 'Idempotent writes made retries safe, which made everything else simpler.',"
    " 'The cache hit rate was high, but the misses all arrived at once.',"
    " 'One lock on the hot path was enough to flatten the throughput curve.',"
    " 'We learned to distrust any number that was not measured on the target machine.',"
    " 'Fewer moving parts meant fewer pages at three in the morning.',"
    " 'The load balancer was the bottleneck, not the application.',"
    " 'Counting rows is cheap until the table is large and the filter is unselective.',"
    " 'We measured twice, changed one thing, and measured again.'] AS sentences,"
    "ARRAY['Background', 'The problem', 'What we measured', 'The fix', 'Results', 'Takeaways'] AS headings,"
    "ARRAY['Great write-up, thanks for sharing!', 'We hit exactly the same problem last year.',"
    " 'Did you try a smaller pool size first?', 'The numbers in the second section surprised me.',"
    " 'This matches what we see in production.', 'Could you share the benchmark script?',"
    " 'I disagree with the conclusion, but the analysis is solid.', 'Bookmarked for the next outage.',"
    " 'How does this behave with two nodes behind a load balancer?', 'Clear and to the point.',"
    " 'We went the other way and regretted it.', 'What about the write path?',"
    " 'Nice, short and practical.', 'The diagram would help here.', 'Thanks, this saved me a day.',"
    " 'Which version of PostgreSQL was this on?'] AS comments,"
    "ARRAY['Backend engineer. Mostly PostgreSQL, sometimes C.', 'I write about performance and reliability.',"
    " 'SRE by day, baker by night.', 'Building boring systems that work.', 'Databases, caches and queues.',"
    " 'Former frontend developer, now lost in the backend.', 'Tea, tests and tail latency.',"
    " 'I break things in staging so you do not have to.', 'Open source maintainer.',"
    " 'Writing down what I learn.', 'Distributed systems, carefully.', 'On call more than I would like.',"
    " 'Learning Rust one borrow at a time.', 'Making the slow parts fast.', 'Here for the benchmarks.'] AS bios,"
    "ARRAY['programming', 'javascript', 'c', 'postgres', 'redis', 'scaling', 'performance', 'devops',"
    " 'testing', 'security', 'linux', 'networking', 'databases', 'caching', 'architecture', 'career',"
    " 'design', 'rust', 'go', 'python', 'web', 'http', 'api', 'cloud', 'kubernetes', 'docker',"
    " 'observability', 'monitoring', 'distributed-systems', 'concurrency', 'algorithms', 'open-source',"
    " 'tutorial', 'opinion', 'productivity', 'frontend', 'backend', 'ux', 'data', 'machine-learning'] AS tags";

static const char create_maps[] =
    "CREATE TEMP TABLE seed_user (n int PRIMARY KEY, id bigint NOT NULL) ON COMMIT DROP;"
    "CREATE TEMP TABLE seed_article (n int PRIMARY KEY, id bigint NOT NULL, created_at timestamptz NOT NULL)"
    " ON COMMIT DROP";

/* Purposes 1-3. Users joined in the year before the articles' year, in
 * order, so ids grow with created_at as they would in a real table. */
static const char insert_users[] =
    "WITH inserted AS ("
    " INSERT INTO users (email, username, password_hash, bio, image, created_at, updated_at)"
    " SELECT g.name || '@example.com', g.name, $1,"
    "  CASE WHEN pg_temp.seed_unit(1, g.n, 0) < 0.6 THEN pg_temp.seed_pick(w.bios, pg_temp.seed_unit(2, g.n, 0)) END,"
    "  CASE WHEN pg_temp.seed_unit(3, g.n, 0) < 0.3 THEN 'https://example.com/avatars/' || g.name || '.png' END,"
    "  g.joined, g.joined"
    " FROM seed_sizes s CROSS JOIN seed_words w CROSS JOIN LATERAL ("
    "  SELECT n, 'user' || lpad(n::text, s.width, '0') AS name,"
    "   w.anchor - interval '730 days' + ((n - 1)::bigint * 31536000000 / s.users) * interval '1 millisecond' AS joined"
    "  FROM generate_series(1, s.users) AS n) g"
    " ORDER BY g.n"
    " RETURNING id, username)"
    "INSERT INTO seed_user (n, id) SELECT substr(username::text, 5)::int, id FROM inserted";

static const char insert_tags[] =
    "INSERT INTO tags (name) SELECT unnest(tags) FROM seed_words ON CONFLICT (name) DO NOTHING";
static const char map_tags[] =
    "CREATE TEMP TABLE seed_tag ON COMMIT DROP AS"
    " SELECT v.k::int AS k, t.id FROM seed_words w CROSS JOIN unnest(w.tags) WITH ORDINALITY AS v(name, k)"
    " JOIN tags t ON t.name = v.name";

/* Purposes 50-51, by ordinals: the counts go into the articles as they are
 * inserted, the rows into favorites once the articles have ids. */
static const char plan_favorites[] =
    "CREATE TEMP TABLE seed_favorite ON COMMIT DROP AS"
    " SELECT DISTINCT u.n AS user_n, pg_temp.seed_skewed(pg_temp.seed_unit(51, u.n, j), s.articles, 2.0) AS article_n"
    " FROM seed_sizes s CROSS JOIN generate_series(1, s.users) AS u(n)"
    " CROSS JOIN LATERAL generate_series(1, floor(pg_temp.seed_unit(50, u.n, 0) * 2 * s.favorites)::int) AS j"
    " WHERE s.articles > 0";

/* Purposes 10-25. The slug's last segment is the ordinal, which keeps
 * slugs unique and maps each row back to it. */
static const char insert_articles[] =
    "WITH inserted AS ("
    " INSERT INTO articles (slug, title, description, body, author_id, favorites_count, created_at, updated_at)"
    " SELECT lower(trim(BOTH '-' FROM regexp_replace(a.title, '[^A-Za-z0-9]+', '-', 'g'))) || '-' || a.n,"
    "  a.title, a.description, a.body, u.id, coalesce(f.count, 0), a.created,"
    "  CASE WHEN pg_temp.seed_unit(24, a.n, 0) < 0.15"
    "   THEN a.created + pg_temp.seed_ms(pg_temp.seed_unit(25, a.n, 0), a.anchor - a.created) ELSE a.created END"
    " FROM (SELECT n, w.anchor,"
    "   CASE floor(pg_temp.seed_unit(10, n, 0) * 8)::int"
    "    WHEN 0 THEN 'How to ' || pg_temp.seed_pick(w.verbs, pg_temp.seed_unit(11, n, 0)) || ' '"
    "     || pg_temp.seed_pick(w.nouns, pg_temp.seed_unit(12, n, 0)) || ' with '"
    "     || pg_temp.seed_pick(w.techs, pg_temp.seed_unit(13, n, 0))"
    "    WHEN 1 THEN 'Why ' || pg_temp.seed_pick(w.nouns, pg_temp.seed_unit(12, n, 0)) || ' '"
    "     || pg_temp.seed_pick(w.verdicts, pg_temp.seed_unit(14, n, 0))"
    "    WHEN 2 THEN pg_temp.seed_pick(w.adjectives, pg_temp.seed_unit(15, n, 0)) || ' '"
    "     || pg_temp.seed_pick(w.nouns, pg_temp.seed_unit(12, n, 0)) || ': '"
    "     || pg_temp.seed_pick(w.lessons, pg_temp.seed_unit(16, n, 0))"
    "    WHEN 3 THEN 'A ' || lower(pg_temp.seed_pick(w.adjectives, pg_temp.seed_unit(15, n, 0))) || ' guide to '"
    "     || pg_temp.seed_pick(w.nouns, pg_temp.seed_unit(12, n, 0))"
    "    WHEN 4 THEN pg_temp.seed_pick(w.techs, pg_temp.seed_unit(13, n, 0)) || ' in production: '"
    "     || pg_temp.seed_pick(w.lessons, pg_temp.seed_unit(16, n, 0))"
    "    WHEN 5 THEN pg_temp.seed_pick(w.numbers, pg_temp.seed_unit(17, n, 0)) || ' things I learned about '"
    "     || pg_temp.seed_pick(w.nouns, pg_temp.seed_unit(12, n, 0))"
    "    WHEN 6 THEN 'Notes on ' || pg_temp.seed_pick(w.nouns, pg_temp.seed_unit(12, n, 0)) || ' in '"
    "     || pg_temp.seed_pick(w.techs, pg_temp.seed_unit(13, n, 0))"
    "    ELSE 'What ' || pg_temp.seed_pick(w.techs, pg_temp.seed_unit(13, n, 0)) || ' taught me about '"
    "     || pg_temp.seed_pick(w.nouns, pg_temp.seed_unit(12, n, 0))"
    "   END AS title,"
    "   pg_temp.seed_pick(w.descriptions, pg_temp.seed_unit(18, n, 0)) AS description,"
    /* 2 to 5 paragraphs of 2 to 5 sentences; a heading first now and then. */
    "   (SELECT string_agg(CASE WHEN p = 1 AND pg_temp.seed_unit(22, n, 0) < 0.3"
    "      THEN '## ' || pg_temp.seed_pick(w.headings, pg_temp.seed_unit(23, n, 0)) || E'\\n\\n' ELSE '' END"
    "     || (SELECT string_agg(pg_temp.seed_pick(w.sentences, pg_temp.seed_unit(30, n, p * 16 + q)), ' ' ORDER BY q)"
    "         FROM generate_series(1, 2 + floor(pg_temp.seed_unit(31, n, p) * 4)::int) AS q),"
    "     E'\\n\\n' ORDER BY p)"
    "    FROM generate_series(1, 2 + floor(pg_temp.seed_unit(32, n, 0) * 4)::int) AS p) AS body,"
    "   pg_temp.seed_skewed(pg_temp.seed_unit(20, n, 0), s.users, 3.0) AS author_n,"
    "   w.anchor - pg_temp.seed_ms(pg_temp.seed_unit(21, n, 0), interval '365 days') AS created"
    "  FROM seed_sizes s CROSS JOIN seed_words w CROSS JOIN generate_series(1, s.articles) AS n) a"
    " JOIN seed_user u ON u.n = a.author_n"
    " LEFT JOIN (SELECT article_n, count(*) AS count FROM seed_favorite GROUP BY article_n) f ON f.article_n = a.n"
    " ORDER BY a.created, a.n"
    " RETURNING id, slug, created_at)"
    "INSERT INTO seed_article (n, id, created_at)"
    " SELECT substring(slug FROM '([0-9]+)$')::int, id, created_at FROM inserted";

/* Purposes 40-41: 0 to 5 draws from the vocabulary, popular tags more
 * often; a tag drawn twice is kept once. */
static const char insert_article_tags[] =
    "INSERT INTO article_tags (article_id, tag_id)"
    " SELECT DISTINCT a.id, t.id FROM seed_article a"
    " CROSS JOIN LATERAL generate_series(1, floor(pg_temp.seed_unit(40, a.n, 0) * 6)::int) AS j"
    " JOIN seed_tag t ON t.k = pg_temp.seed_skewed(pg_temp.seed_unit(41, a.n, j), " STRINGIFY(STORE_SEED_TAGS) ", 2.0)"
    " ORDER BY a.id, t.id";

/* Purposes 60-62: popular users are followed most; nobody follows himself. */
static const char insert_follows[] =
    "INSERT INTO follows (follower_id, followee_id, created_at)"
    " SELECT follower.id, followee.id,"
    "  w.anchor - pg_temp.seed_ms(pg_temp.seed_unit(62, p.follower_n, p.followee_n), interval '365 days')"
    " FROM (SELECT DISTINCT u.n AS follower_n,"
    "   pg_temp.seed_skewed(pg_temp.seed_unit(61, u.n, j), s.users, 2.0) AS followee_n"
    "  FROM seed_sizes s CROSS JOIN generate_series(1, s.users) AS u(n)"
    "  CROSS JOIN LATERAL generate_series(1, floor(pg_temp.seed_unit(60, u.n, 0) * 2 * s.follows)::int) AS j) p"
    " JOIN seed_user follower ON follower.n = p.follower_n"
    " JOIN seed_user followee ON followee.n = p.followee_n"
    " CROSS JOIN seed_words w"
    " WHERE p.follower_n <> p.followee_n"
    " ORDER BY 3, 1, 2";

/* Purpose 52. The counts are already in the articles, so the triggers that
 * would add one per row (a row update each) are off for this insert only;
 * ALTER TABLE is transactional, and a failure rolls it back with the rest. */
static const char disable_favorite_triggers[] = "ALTER TABLE favorites DISABLE TRIGGER USER";
static const char insert_favorites[] =
    "INSERT INTO favorites (user_id, article_id, created_at)"
    " SELECT u.id, a.id,"
    "  a.created_at + pg_temp.seed_ms(pg_temp.seed_unit(52, f.user_n, f.article_n), w.anchor - a.created_at)"
    " FROM seed_favorite f JOIN seed_user u ON u.n = f.user_n JOIN seed_article a ON a.n = f.article_n"
    " CROSS JOIN seed_words w"
    " ORDER BY 3, 1, 2";
static const char enable_favorite_triggers[] = "ALTER TABLE favorites ENABLE TRIGGER USER";

/* Purposes 70-74: 0 to 8 per article (u^3 * 9: most have few), 1 to 3
 * sentences each, after the article. */
static const char insert_comments[] =
    "INSERT INTO comments (article_id, author_id, body, created_at, updated_at)"
    " SELECT c.article_id, u.id, c.body, c.created, c.created"
    " FROM (SELECT a.id AS article_id, j,"
    "   pg_temp.seed_skewed(pg_temp.seed_unit(71, a.n, j), s.users, 2.0) AS author_n,"
    "   a.created_at + pg_temp.seed_ms(pg_temp.seed_unit(72, a.n, j), w.anchor - a.created_at) AS created,"
    "   (SELECT string_agg(pg_temp.seed_pick(w.comments, pg_temp.seed_unit(73, a.n, j * 4 + q)), ' ' ORDER BY q)"
    "    FROM generate_series(1, 1 + floor(pg_temp.seed_unit(74, a.n, j) * 3)::int) AS q) AS body"
    "  FROM seed_sizes s CROSS JOIN seed_words w CROSS JOIN seed_article a"
    "  CROSS JOIN LATERAL generate_series(1, floor(power(pg_temp.seed_unit(70, a.n, 0), 3) * 9)::int) AS j) c"
    " JOIN seed_user u ON u.n = c.author_n"
    " ORDER BY c.created, c.article_id, c.j";

static const char reset_tables[] = "TRUNCATE users, follows, articles, tags, article_tags, favorites, comments";

/* VACUUM, not only ANALYZE: freshly written pages are not yet marked
 * all-visible, so PostgreSQL would plan bitmap heap scans instead of the
 * index-only scans that the lists and the feed are indexed for (a feed
 * page measured 7.5 ms before the vacuum and 0.08 ms after it).
 * Autovacuum would get there, but not before a load test starts. */
static const char analyze_tables[] =
    "VACUUM (ANALYZE) users, follows, articles, tags, article_tags, favorites, comments";

typedef struct seeding {
    store_admin *admin;
    const store_seed_options *options;
    char *error;
    size_t error_size;
    store_status failure; /* what a failed step comes to */
} seeding;

static uint64_t monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

static double seconds_since(uint64_t start_ms)
{
    return (double)(monotonic_ms() - start_ms) / 1000.0;
}

/* A failed step names itself. */
static bool failed(seeding *seed, const char *name, store_status status, const char *reason)
{
    snprintf(seed->error, seed->error_size, "%s: %s", name, reason);
    seed->failure = status;
    return false;
}

/* Runs one step (several statements when param_count is 0); rows, when
 * asked, from the last command's tag, and then the step is reported to the
 * progress callback. */
static bool step(seeding *seed, const char *name, const char *sql, int param_count, const char *const *params,
                 long long *rows)
{
    uint64_t start = monotonic_ms();
    long long affected;
    char reason[400];
    store_status status = store_admin_exec(seed->admin, sql, param_count, params, &affected, reason, sizeof reason);
    if (status != STORE_OK)
        return failed(seed, name, status, reason);
    if (rows != NULL) {
        *rows = affected;
        if (seed->options->progress != NULL)
            seed->options->progress(seed->options->progress_data, name, affected, seconds_since(start));
    }
    return true;
}

/* One integer from a query, or -1 after a failure. */
static long long query_number(seeding *seed, const char *name, const char *sql)
{
    long long value;
    char reason[400];
    store_status status = store_admin_number(seed->admin, sql, &value, reason, sizeof reason);
    if (status != STORE_OK) {
        failed(seed, name, status, reason);
        return -1;
    }
    return value;
}

static bool valid(const store_seed_options *options, char *error, size_t error_size)
{
    if (options->users < 1 || options->users > STORE_SEED_MAX_USERS) {
        snprintf(error, error_size, "users: %d is not between 1 and %d", options->users, STORE_SEED_MAX_USERS);
        return false;
    }
    if (options->articles < 0 || options->articles > STORE_SEED_MAX_ARTICLES) {
        snprintf(error, error_size, "articles: %d is not between 0 and %d", options->articles,
                 STORE_SEED_MAX_ARTICLES);
        return false;
    }
    if (options->seed < 0) {
        snprintf(error, error_size, "seed: %d is negative", options->seed);
        return false;
    }
    if (options->password_hash == NULL || options->password_hash[0] == '\0') {
        snprintf(error, error_size, "no password hash");
        return false;
    }
    return true;
}

/* Everything between BEGIN and COMMIT. */
static bool fill(seeding *seed, store_seed_report *report)
{
    const store_seed_options *options = seed->options;
    long long existing = query_number(seed, "counting users", "SELECT count(*) FROM users");
    if (existing < 0)
        return false;
    if (existing > 0 && !options->reset) {
        snprintf(seed->error, seed->error_size, "the database already holds %lld users", existing);
        seed->failure = STORE_CONFLICT;
        report->removed_users = existing;
        return false;
    }
    if (options->reset) {
        if (!step(seed, "reset", reset_tables, 0, NULL, NULL))
            return false;
        report->removed_users = existing;
    }

    /* The seed goes into the hash function's own seed: a constant of the
     * function, so that PostgreSQL inlines the whole expression. */
    char unit_function[512];
    snprintf(unit_function, sizeof unit_function,
             "CREATE FUNCTION pg_temp.seed_unit(purpose int, a bigint, b bigint) RETURNS float8 LANGUAGE sql"
             " IMMUTABLE AS 'SELECT ((hashint8extended($2 * 16777216 + $3, %d::bigint * 128 + $1) >> 11)"
             " & 9007199254740991)::float8 / 9007199254740992.0'",
             options->seed);
    /* Per user: about 10 follows and 3 favourites per article overall,
     * fewer when there are too few users or articles to pick from. */
    double follows = options->users > 1 ? (options->users - 1) / 2.0 : 0.0;
    if (follows > 10.0)
        follows = 10.0;
    double favorites = 3.0 * options->articles / options->users;
    if (favorites > options->articles / 2.0)
        favorites = options->articles / 2.0;
    int width = snprintf(NULL, 0, "%d", options->users);
    if (width < 5)
        width = 5;
    char users[16], articles[16], width_text[16], follows_text[32], favorites_text[32];
    snprintf(users, sizeof users, "%d", options->users);
    snprintf(articles, sizeof articles, "%d", options->articles);
    snprintf(width_text, sizeof width_text, "%d", width);
    snprintf(follows_text, sizeof follows_text, "%.17g", follows);
    snprintf(favorites_text, sizeof favorites_text, "%.17g", favorites);
    const char *sizes[] = {users, articles, width_text, follows_text, favorites_text};
    const char *hash[] = {options->password_hash};

    return step(seed, "helpers", unit_function, 0, NULL, NULL) &&
           step(seed, "helpers", helper_functions, 0, NULL, NULL) &&
           step(seed, "sizes", create_sizes, 0, NULL, NULL) &&
           step(seed, "sizes", insert_sizes, 5, sizes, NULL) &&
           step(seed, "vocabulary", create_words, 0, NULL, NULL) &&
           step(seed, "maps", create_maps, 0, NULL, NULL) &&
           step(seed, "users", insert_users, 1, hash, &report->users) &&
           step(seed, "maps", "ANALYZE seed_user", 0, NULL, NULL) &&
           step(seed, "tags", insert_tags, 0, NULL, &report->tags) &&
           step(seed, "maps", map_tags, 0, NULL, NULL) &&
           step(seed, "favourites planned", plan_favorites, 0, NULL, NULL) &&
           step(seed, "articles", insert_articles, 0, NULL, &report->articles) &&
           step(seed, "maps", "ANALYZE seed_article", 0, NULL, NULL) &&
           step(seed, "article tags", insert_article_tags, 0, NULL, &report->article_tags) &&
           step(seed, "follows", insert_follows, 0, NULL, &report->follows) &&
           step(seed, "favourites", disable_favorite_triggers, 0, NULL, NULL) &&
           step(seed, "favourites", insert_favorites, 0, NULL, &report->favorites) &&
           step(seed, "favourites", enable_favorite_triggers, 0, NULL, NULL) &&
           step(seed, "comments", insert_comments, 0, NULL, &report->comments);
}

store_status store_seed(const store_config *config, const store_seed_options *options, store_seed_report *report,
                        char *error, size_t error_size)
{
    store_seed_report local;
    if (report == NULL)
        report = &local;
    memset(report, 0, sizeof *report);
    if (!valid(options, error, error_size))
        return STORE_INVALID;

    /* Seeding is one long transaction: the per-statement limit meant for
     * requests does not apply to it. */
    store_config unlimited = *config;
    unlimited.statement_timeout_ms = 0;
    if (unlimited.application_name == NULL || unlimited.application_name[0] == '\0')
        unlimited.application_name = "shoal-seed";
    store_admin *admin = store_admin_open(&unlimited, error, error_size);
    if (admin == NULL)
        return STORE_UNAVAILABLE;
    seeding seed = {.admin = admin, .options = options, .error = error, .error_size = error_size,
                    .failure = STORE_ERROR};
    uint64_t start = monotonic_ms();
    bool done = step(&seed, "settings", session_settings, 0, NULL, NULL) &&
                step(&seed, "begin", "BEGIN", 0, NULL, NULL) && fill(&seed, report) &&
                step(&seed, "commit", "COMMIT", 0, NULL, NULL);
    report->seconds = seconds_since(start);
    if (!done) {
        /* Nothing of it stays: the transaction is rolled back with the
         * connection if ROLLBACK itself cannot be sent, so its outcome does
         * not matter. */
        char ignored[200];
        (void)store_admin_exec(admin, "ROLLBACK", 0, NULL, NULL, ignored, sizeof ignored);
        store_admin_close(admin);
        return seed.failure;
    }
    /* Fresh statistics, or the first requests plan for empty tables, and
     * the visibility map (analyze_tables). VACUUM runs outside the
     * transaction, as it must. */
    uint64_t analyze_start = monotonic_ms();
    long long no_rows;
    if (!step(&seed, "analyze", analyze_tables, 0, NULL, &no_rows)) {
        store_admin_close(admin);
        return seed.failure;
    }
    report->analyze_seconds = seconds_since(analyze_start);
    store_admin_close(admin);
    return STORE_OK;
}

/* node/services/conduit/seed.h: a reproducible Conduit data set for load tests (`shoal-node seed`).
 *
 * Everything is generated inside PostgreSQL (INSERT ... SELECT over
 * generate_series) in one transaction: no row crosses the network, so
 * 100,000 articles take about a minute on two cores. Every value is a hash
 * of the seed, the table and the row's ordinal (hashint8extended), never
 * random(): the same users, articles and seed give the same rows whatever
 * the plan's order. Timestamps count back from midnight UTC of the day of
 * seeding (users joined one to two years ago, articles fall in the past
 * year, comments and favourites after their article), so two data sets
 * seeded on different days differ by whole days only; ids are the same only
 * in a database whose identities start afresh.
 *
 * What is made, for N users and M articles:
 * - users user00001 .. (email userNNNNN@example.com, the caller's password
 *   hash for all of them), a bio for about 60 %, an image for about 30 %;
 * - the tag vocabulary (STORE_SEED_TAGS names);
 * - articles with titles from templates, slugs of the title plus "-<n>",
 *   a one-sentence description, a body of 2 to 5 paragraphs (about 1 KB),
 *   0 to 5 tags each, authors drawn Zipf-like (a few users write most);
 * - follows: about 10 per user (fewer when N is small), popular users
 *   followed most, nobody follows himself;
 * - favourites: about 3 per article (at most half the articles per user),
 *   with favorites_count set exactly (see store_seed);
 * - comments: about 2 per article, 0 to 8, by users drawn Zipf-like. */
#ifndef STORE_SEED_H
#define STORE_SEED_H

#include <stdbool.h>

#include <shoal/store.h>

#define STORE_SEED_MAX_USERS 10000000
#define STORE_SEED_MAX_ARTICLES 10000000
/* How many tags the vocabulary holds. */
#define STORE_SEED_TAGS 40

typedef struct store_seed_options {
    int users;    /* 1 .. STORE_SEED_MAX_USERS */
    int articles; /* 0 .. STORE_SEED_MAX_ARTICLES */
    int seed;     /* 0 .. INT_MAX: another seed, another data set of the same shape */
    /* Empty the Conduit tables first (users, follows, articles, tags,
     * article_tags, favorites, comments); identities are not restarted, so
     * an old session or cache entry never names a new row. Without it a
     * database that holds any user is refused (STORE_CONFLICT). */
    bool reset;
    /* Stored for every user: one hash, computed once by the caller. */
    const char *password_hash;
    /* Called after each step, may be NULL: what was made, how many rows
     * (-1 for a step that makes none, ANALYZE), in how many seconds. */
    void (*progress)(void *data, const char *step, long long rows, double seconds);
    void *progress_data;
} store_seed_options;

typedef struct store_seed_report {
    long long users, tags, articles, article_tags, follows, favorites, comments;
    long long removed_users; /* by reset */
    double seconds;          /* the whole transaction, without ANALYZE */
    double analyze_seconds;
} store_seed_report;

/* Fills the database in one transaction: all or nothing. Favourites are
 * inserted with the table's user triggers disabled (ALTER TABLE ... DISABLE
 * TRIGGER USER, inside the transaction, so the role must own the table, as
 * the role that ran the migrations does) and each article's favorites_count
 * is written with the article from the same favourite rows: exact, and
 * without 300,000 trigger updates. ANALYZE runs after the commit.
 *
 * STORE_OK; STORE_CONFLICT when the database holds users and reset is
 * false; STORE_INVALID for options out of range; STORE_UNAVAILABLE when
 * PostgreSQL cannot be reached; STORE_ERROR otherwise. error says why. */
store_status store_seed(const store_config *config, const store_seed_options *options, store_seed_report *report,
                        char *error, size_t error_size);

#endif

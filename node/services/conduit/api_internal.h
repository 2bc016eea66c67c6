/* node/services/conduit/api_internal.h: what the API's files share. */
#ifndef API_INTERNAL_H
#define API_INTERNAL_H

#include <shoal/ext/rate_limit.h>
#include <shoal/metrics.h>
#include <shoal/password.h>
#include <shoal/shoal.h>

#include "api_errors.h"
#include "sql/article.h"
#include "sql/comment.h"
#include "sql/profile.h"
#include "sql/tag.h"
#include "sql/user.h"

/* Cache families (docs/api.md#caching). Values hold only what every
 * viewer sees; `favorited` and `following` are read per request. */
#define API_CACHE_ARTICLE "article" /* key: the slug */
#define API_CACHE_PROFILE "profile" /* key: the username as asked for */
#define API_CACHE_TAGS "tags"       /* one key, API_CACHE_TAGS_KEY */
#define API_CACHE_TAGS_KEY "in-use"
#define API_CACHE_COUNT "article_count" /* key: the tag and author filters */
/* Each write that changes a value invalidates it; the TTL bounds what a
 * lost invalidation (Redis down at that moment) or a fill that raced a
 * key's invalidation can leave behind. */
#define API_ARTICLE_TTL_MS 30000
#define API_PROFILE_TTL_MS 60000
#define API_TAGS_TTL_MS 60000
#define API_COUNT_TTL_MS 60000

/* Built at setup, read-only while serving (the hasher has its own lock),
 * so every worker shares it. Handlers reach it as their route's data. */
typedef struct api_state {
    store_user_statements users;
    store_profile_statements profiles;
    store_article_statements articles;
    store_tag_statements tags;
    store_comment_statements comments;
    shoal_password *passwords;
    shoal_rate_limit_rule failures_per_address;
    shoal_rate_limit_rule failures_per_account;
    int max_limit; /* --api-max-limit */
    const shoal_counter *logins; /* conduit_logins_total{result}: api_login_result */
} api_state;

/* conduit_logins_total's results, in the order of its label values. */
typedef enum api_login_result {
    API_LOGIN_SUCCEEDED,
    API_LOGIN_WRONG_CREDENTIALS, /* no such email, or a wrong password */
    API_LOGIN_LIMITED,           /* refused by the login failure limits (429) */
} api_login_result;

/* Registers the user routes on bp; 0 or -1. */
int api_users_register(shoal_blueprint *bp, api_state *state);
/* Registers the profile routes on bp; 0 or -1. */
int api_profiles_register(shoal_blueprint *bp, api_state *state);
/* Registers the comment routes on bp; 0 or -1. */
int api_comments_register(shoal_blueprint *bp, api_state *state);

/* Registers the article, favourite, feed and tag routes on bp; 0 or -1. */
int api_articles_register(shoal_blueprint *bp, api_state *state);

/* After a user's username, bio or image changed: his cached profile,
 * every cached article (they embed their author) and the counts by author
 * (they name him) are stale. */
void api_author_changed(shoal_ctx *ctx);

/* {"username","bio","image","following"}: an article's or a comment's
 * author as the caller sees him (bio and image null when NULL). */
void api_write_author(shoal_json_writer *out, const char *username, const char *bio, const char *image,
                      bool following);

/* A 422 with code (api_errors.h; request.invalid_field) naming field with
 * message. Returns 0 (answered). */
int api_invalid(shoal_ctx *ctx, const char *field, const shoal_error_code *code, const char *message);
/* A store failure in the one place that maps them; STORE_NOT_FOUND as
 * not_found (article.not_found, ...). */
int api_store_failure(shoal_ctx *ctx, store_status status, const shoal_error_code *not_found);
/* 503 password.busy with Retry-After: 1, or 500 for an error. */
int api_password_failure(shoal_ctx *ctx, shoal_password_status status);

#endif

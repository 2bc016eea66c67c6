/* node/services/conduit/settings.c: Conduit's own settings (<node/services/conduit/api.h>). */
#include "api.h"

#include <stddef.h>

#include <shoal/ext/rate_limit.h>

static int check_login_rule(const char *value, char *reason, size_t reason_size)
{
    shoal_rate_limit_rule rule;
    return shoal_rate_limit_parse_rule(value, &rule, reason, reason_size);
}

#define FIELD(name) offsetof(shoal_conduit_settings_values, name)

static const shoal_setting conduit_table[] = {
    {"api", "SHOAL_API", SHOAL_SETTING_BOOL, FIELD(api), "true", 0, 0, "serve the RealWorld API under /api", NULL},
    {"api-max-limit", "SHOAL_API_MAX_LIMIT", SHOAL_SETTING_INT, FIELD(max_limit), "100", 1, 1000,
     "most articles one page of GET /api/articles or /api/articles/feed returns; a larger ?limit= is cut to it", NULL},
    {"login-failures-per-address", "SHOAL_LOGIN_FAILURES_PER_ADDRESS", SHOAL_SETTING_STRING,
     FIELD(login_failures_per_address), "20/15min burst 20", 0, 0,
     "failed logins allowed per client address, 'COUNT/[N]UNIT [burst B]'; more get 429", check_login_rule},
    {"login-failures-per-account", "SHOAL_LOGIN_FAILURES_PER_ACCOUNT", SHOAL_SETTING_STRING,
     FIELD(login_failures_per_account), "5/15min burst 5", 0, 0,
     "failed logins allowed per account from one client address; more get 429 (other addresses are not locked out)",
     check_login_rule},
};

const shoal_settings shoal_conduit_settings =
    SHOAL_SETTINGS("conduit (the RealWorld API)", shoal_conduit_settings_values, conduit_table, NULL);

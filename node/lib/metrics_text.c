/* node/lib/metrics_text.c: the Prometheus text exposition format (version
 * 0.0.4): families, samples and histograms, escaped, into a growing
 * buffer; and the family names the core writes by hand, here so that the
 * registry can keep them free without calling the scrape (metrics.c),
 * which calls it. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shoal/metrics.h>

#include "metrics_registry.h"

/* ---- the text format ------------------------------------------------------------ */

static void append(shoal_metrics_text *text, const char *data, size_t length)
{
    if (text->failed)
        return;
    if (text->length + length + 1 > text->capacity) {
        size_t capacity = text->capacity > 0 ? text->capacity : 4096;
        while (text->length + length + 1 > capacity)
            capacity *= 2;
        char *grown = realloc(text->data, capacity);
        if (grown == NULL) {
            text->failed = 1;
            return;
        }
        text->data = grown;
        text->capacity = capacity;
    }
    memcpy(text->data + text->length, data, length);
    text->length += length;
    text->data[text->length] = '\0';
}

static void append_text(shoal_metrics_text *text, const char *data)
{
    append(text, data, strlen(data));
}

/* The format escapes backslash and newline everywhere, and the double
 * quote in label values only. */
static void append_escaped(shoal_metrics_text *text, const char *data, int quote)
{
    for (const char *c = data; *c != '\0'; c++) {
        if (*c == '\\')
            append(text, "\\\\", 2);
        else if (*c == '\n')
            append(text, "\\n", 2);
        else if (*c == '"' && quote)
            append(text, "\\\"", 2);
        else
            append(text, c, 1);
    }
}

static void append_value(shoal_metrics_text *text, double value)
{
    char number[64];
    if (isinf(value))
        snprintf(number, sizeof number, "%s", value > 0 ? "+Inf" : "-Inf");
    else if (isnan(value))
        snprintf(number, sizeof number, "NaN");
    else if (value == floor(value) && fabs(value) < 1e15)
        snprintf(number, sizeof number, "%.0f", value);
    else
        snprintf(number, sizeof number, "%.17g", value);
    append_text(text, number);
}

void shoal_metrics_text_free(shoal_metrics_text *text)
{
    free(text->data);
    *text = (shoal_metrics_text){0};
}

void shoal_metrics_family(shoal_metrics_text *text, const char *name, const char *type, const char *help)
{
    append_text(text, "# HELP ");
    append_text(text, name);
    append(text, " ", 1);
    append_escaped(text, help, 0);
    append_text(text, "\n# TYPE ");
    append_text(text, name);
    append(text, " ", 1);
    append_text(text, type);
    append(text, "\n", 1);
}

static void sample_with(shoal_metrics_text *text, const char *name, const char *suffix,
                        const shoal_metrics_label *labels, size_t label_count, const char *le, double value)
{
    append_text(text, name);
    if (suffix != NULL)
        append_text(text, suffix);
    if (label_count > 0 || le != NULL) {
        append(text, "{", 1);
        for (size_t i = 0; i < label_count; i++) {
            if (i > 0)
                append(text, ",", 1);
            append_text(text, labels[i].name);
            append(text, "=\"", 2);
            append_escaped(text, labels[i].value != NULL ? labels[i].value : "", 1);
            append(text, "\"", 1);
        }
        if (le != NULL) {
            append_text(text, label_count > 0 ? ",le=\"" : "le=\"");
            append_text(text, le);
            append(text, "\"", 1);
        }
        append(text, "}", 1);
    }
    append(text, " ", 1);
    append_value(text, value);
    append(text, "\n", 1);
}

void shoal_metrics_sample(shoal_metrics_text *text, const char *name, const char *suffix,
                          const shoal_metrics_label *labels, size_t label_count, double value)
{
    sample_with(text, name, suffix, labels, label_count, NULL, value);
}

void shoal_metrics_histogram(shoal_metrics_text *text, const char *name, const shoal_metrics_label *labels,
                             size_t label_count, const unsigned long buckets[SHOAL_METRICS_BUCKETS + 1],
                             uint64_t duration_ns)
{
    unsigned long cumulative = 0;
    for (size_t i = 0; i <= SHOAL_METRICS_BUCKETS; i++) {
        cumulative += buckets[i];
        char le[32];
        if (i < SHOAL_METRICS_BUCKETS)
            snprintf(le, sizeof le, "%g", (double)shoal_metrics_bucket_bounds_ns[i] / 1e9);
        else
            snprintf(le, sizeof le, "+Inf");
        sample_with(text, name, "_bucket", labels, label_count, le, (double)cumulative);
    }
    sample_with(text, name, "_sum", labels, label_count, NULL, (double)duration_ns / 1e9);
    sample_with(text, name, "_count", labels, label_count, NULL, (double)cumulative);
}

/* The shortest text that reads back as bound: le="0.25", not le="0.25000000000000000". */
static void format_bound(char *out, size_t size, double bound)
{
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(out, size, "%.*g", digits, bound);
        if (strtod(out, NULL) == bound)
            return;
    }
}

void shoal_metrics_histogram_of(shoal_metrics_text *text, const char *name, const shoal_metrics_label *labels,
                                size_t label_count, const double *bounds, size_t bound_count,
                                const unsigned long long *buckets, double sum)
{
    unsigned long long cumulative = 0;
    for (size_t i = 0; i <= bound_count; i++) {
        cumulative += buckets[i];
        char le[32];
        if (i < bound_count)
            format_bound(le, sizeof le, bounds[i]);
        else
            snprintf(le, sizeof le, "+Inf");
        sample_with(text, name, "_bucket", labels, label_count, le, (double)cumulative);
    }
    sample_with(text, name, "_sum", labels, label_count, NULL, sum);
    sample_with(text, name, "_count", labels, label_count, NULL, (double)cumulative);
}

/* ---- the names the core writes by hand ---------------------------------------- */

/* Every family metrics.c's scrape writes itself: one added there belongs here. */
static const char *const core_families[] = {
    "shoal_http_requests_total",
    "shoal_http_request_duration_seconds",
    "shoal_http_requests_in_flight",
    "shoal_http_requests_in_flight_limit",
    "shoal_http_connections",
    "shoal_process_start_time_seconds",
    "shoal_postgres_calls_total",
    "shoal_postgres_errors_total",
    "shoal_postgres_call_seconds_total",
    "shoal_postgres_reconnects_total",
    "shoal_postgres_pipe_wait_seconds",
    "shoal_postgres_pipe_seconds_total",
    "shoal_postgres_pipe_wait_max_seconds",
    "shoal_postgres_pipe_spilled_total",
    "shoal_postgres_pipe_spill_connections_total",
    "shoal_redis_calls_total",
    "shoal_redis_errors_total",
    "shoal_redis_call_seconds_total",
    "shoal_redis_reconnects_total",
};

bool shoal_metrics_core_name_taken(const char *name)
{
    for (size_t i = 0; i < sizeof core_families / sizeof core_families[0]; i++)
        if (strcmp(name, core_families[i]) == 0)
            return true;
    return false;
}

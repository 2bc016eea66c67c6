/* tests/unit/node/metrics_test.c: the Prometheus text of node/metrics.c
 * (escaping, histograms, numbers, the cache and session families) and the
 * per-worker counting, without a server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"

static void label_values_escape_backslash_quote_and_newline(void **state)
{
    (void)state;
    shoal_metrics_text text = {0};
    shoal_metrics_label labels[] = {{"route", "/a\\b\"c\nd"}, {"method", "GET"}};
    shoal_metrics_sample(&text, "shoal_x_total", NULL, labels, 2, 3);
    assert_string_equal(text.data, "shoal_x_total{route=\"/a\\\\b\\\"c\\nd\",method=\"GET\"} 3\n");
    shoal_metrics_text_free(&text);
}

static void help_escapes_backslash_and_newline_but_not_quotes(void **state)
{
    (void)state;
    shoal_metrics_text text = {0};
    shoal_metrics_family(&text, "shoal_y", "gauge", "a \"b\" c\\d\ne");
    assert_string_equal(text.data, "# HELP shoal_y a \"b\" c\\\\d\\ne\n# TYPE shoal_y gauge\n");
    shoal_metrics_text_free(&text);
}

static void values_are_integers_or_exact_floats(void **state)
{
    (void)state;
    shoal_metrics_text text = {0};
    shoal_metrics_sample(&text, "a", NULL, NULL, 0, 0);
    shoal_metrics_sample(&text, "b", NULL, NULL, 0, 12345678901234.0);
    shoal_metrics_sample(&text, "c", NULL, NULL, 0, 0.25);
    shoal_metrics_sample(&text, "d", "_sum", NULL, 0, 1.0 / 0.0);
    assert_string_equal(text.data, "a 0\nb 12345678901234\nc 0.25\nd_sum +Inf\n");
    shoal_metrics_text_free(&text);
}

static void histograms_are_cumulative_with_le_last(void **state)
{
    (void)state;
    unsigned long buckets[SHOAL_METRICS_BUCKETS + 1] = {0};
    buckets[0] = 2;
    buckets[3] = 1;
    buckets[SHOAL_METRICS_BUCKETS] = 4;
    shoal_metrics_text text = {0};
    shoal_metrics_label labels[] = {{"route", "/db"}};
    shoal_metrics_histogram(&text, "h", labels, 1, buckets, 1500000000);
    assert_non_null(strstr(text.data, "h_bucket{route=\"/db\",le=\"0.0005\"} 2\n"));
    assert_non_null(strstr(text.data, "h_bucket{route=\"/db\",le=\"0.001\"} 2\n"));
    assert_non_null(strstr(text.data, "h_bucket{route=\"/db\",le=\"0.005\"} 3\n"));
    assert_non_null(strstr(text.data, "h_bucket{route=\"/db\",le=\"5\"} 3\n"));
    assert_non_null(strstr(text.data, "h_bucket{route=\"/db\",le=\"+Inf\"} 7\n"));
    assert_non_null(strstr(text.data, "h_sum{route=\"/db\"} 1.5\n"));
    assert_non_null(strstr(text.data, "h_count{route=\"/db\"} 7\n"));
    /* Buckets come in order of their bounds, +Inf last before _sum. */
    assert_true(strstr(text.data, "le=\"0.0005\"") < strstr(text.data, "le=\"5\""));
    assert_true(strstr(text.data, "le=\"5\"") < strstr(text.data, "le=\"+Inf\""));
    assert_true(strstr(text.data, "le=\"+Inf\"") < strstr(text.data, "h_sum"));
    shoal_metrics_text_free(&text);
}

static void observations_land_in_their_class_and_bucket(void **state)
{
    (void)state;
    shoal_route_counters counters;
    memset(&counters, 0, sizeof counters);
    shoal_route_counters_observe(&counters, 200, 500000);     /* on the bound: that bucket */
    shoal_route_counters_observe(&counters, 404, 500001);     /* just above: the next */
    shoal_route_counters_observe(&counters, 503, 6000000000); /* past 5 s: +Inf */
    shoal_route_counters_observe(&counters, 0, 1);            /* no status: 5xx */
    shoal_route_totals totals = {0};
    shoal_route_counters_add_to(&counters, &totals);
    shoal_route_counters_add_to(&counters, &totals); /* a second worker */
    assert_int_equal(totals.by_class[1], 2);
    assert_int_equal(totals.by_class[3], 2);
    assert_int_equal(totals.by_class[4], 4);
    assert_int_equal(totals.buckets[0], 4);
    assert_int_equal(totals.buckets[1], 2);
    assert_int_equal(totals.buckets[SHOAL_METRICS_BUCKETS], 2);
    assert_int_equal(totals.duration_ns, 2 * (500000ull + 500001ull + 6000000000ull + 1ull));
}

static void worker_counters_sum_by_source_and_result(void **state)
{
    (void)state;
    shoal_worker_counters counters;
    memset(&counters, 0, sizeof counters);
    shoal_worker_counters_cache_read(&counters, CACHE_ASIDE_L1, 3);
    shoal_worker_counters_cache_read(&counters, CACHE_ASIDE_BYPASSED, 1);
    shoal_worker_counters_cache_read(&counters, (cache_aside_source)SHOAL_METRICS_CACHE_SOURCES, 7); /* none */
    shoal_worker_counters_cache_read(NULL, CACHE_ASIDE_L1, 1);                                      /* no worker */
    shoal_worker_counters_session_lookup(&counters, SHOAL_SESSION_LOOKUP_MISSING);
    shoal_worker_counters_session_lookup(&counters, SHOAL_SESSION_LOOKUP_MISSING);
    shoal_worker_counters_session_lookup(&counters, SHOAL_SESSION_LOOKUP_ERROR);
    shoal_worker_counters_shed(&counters, SHOAL_SHED_IN_FLIGHT);
    shoal_worker_counters_shed(&counters, SHOAL_SHED_DEADLINE);
    shoal_worker_counters_shed(&counters, SHOAL_SHED_DEADLINE);
    shoal_worker_counters_shed(&counters, (shoal_shed_reason)SHOAL_METRICS_SHED_REASONS); /* none */
    shoal_worker_counters_shed(NULL, SHOAL_SHED_DEADLINE);                                /* no worker */
    shoal_worker_totals totals = {0};
    shoal_worker_counters_add_to(&counters, &totals);
    shoal_worker_counters_add_to(&counters, &totals); /* a second worker */
    assert_int_equal(totals.shed[SHOAL_SHED_IN_FLIGHT], 2);
    assert_int_equal(totals.shed[SHOAL_SHED_DEADLINE], 4);
    assert_int_equal(totals.cache_reads[CACHE_ASIDE_L1], 6);
    assert_int_equal(totals.cache_reads[CACHE_ASIDE_REDIS], 0);
    assert_int_equal(totals.cache_reads[CACHE_ASIDE_BYPASSED], 2);
    assert_int_equal(totals.session_lookups[SHOAL_SESSION_LOOKUP_FOUND], 0);
    assert_int_equal(totals.session_lookups[SHOAL_SESSION_LOOKUP_MISSING], 4);
    assert_int_equal(totals.session_lookups[SHOAL_SESSION_LOOKUP_ERROR], 2);
}

static void cache_and_session_families_list_every_label_value(void **state)
{
    (void)state;
    shoal_worker_totals totals = {0};
    totals.cache_reads[CACHE_ASIDE_L1] = 5;
    totals.cache_reads[CACHE_ASIDE_FILLED] = 2;
    totals.cache_reads[CACHE_ASIDE_STALE_IF_ERROR] = 3;
    totals.session_lookups[SHOAL_SESSION_LOOKUP_MISSING] = 1;
    totals.shed[SHOAL_SHED_DEADLINE] = 4;
    shoal_metrics_text text = {0};
    shoal_metrics_worker_totals(&text, &totals);
    assert_false(text.failed);
    const char *expected_samples = "shoal_cache_reads_total{source=\"l1\"} 5\n"
                                   "shoal_cache_reads_total{source=\"redis\"} 0\n"
                                   "shoal_cache_reads_total{source=\"stale\"} 0\n"
                                   "shoal_cache_reads_total{source=\"filled\"} 2\n"
                                   "shoal_cache_reads_total{source=\"bypassed\"} 0\n"
                                   "shoal_cache_reads_total{source=\"stale_if_error\"} 3\n";
    assert_non_null(strstr(text.data, expected_samples));
    assert_non_null(strstr(text.data, "shoal_session_lookups_total{result=\"found\"} 0\n"
                                      "shoal_session_lookups_total{result=\"missing\"} 1\n"
                                      "shoal_session_lookups_total{result=\"error\"} 0\n"));
    assert_non_null(strstr(text.data, "# TYPE shoal_http_requests_shed_total counter\n"));
    assert_non_null(strstr(text.data, "shoal_http_requests_shed_total{reason=\"in_flight\"} 0\n"
                                      "shoal_http_requests_shed_total{reason=\"deadline\"} 4\n"));
    /* Each family is declared once, before its samples. */
    const char *type = strstr(text.data, "# TYPE shoal_cache_reads_total counter\n");
    assert_non_null(type);
    assert_true(type < strstr(text.data, expected_samples));
    assert_null(strstr(type + 1, "# TYPE shoal_cache_reads_total"));
    assert_non_null(strstr(text.data, "# TYPE shoal_session_lookups_total counter\n"));
    assert_true(strstr(text.data, "# TYPE shoal_session_lookups_total") < strstr(text.data, "result=\"found\""));
    shoal_metrics_text_free(&text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(label_values_escape_backslash_quote_and_newline),
        cmocka_unit_test(help_escapes_backslash_and_newline_but_not_quotes),
        cmocka_unit_test(values_are_integers_or_exact_floats),
        cmocka_unit_test(histograms_are_cumulative_with_le_last),
        cmocka_unit_test(observations_land_in_their_class_and_bucket),
        cmocka_unit_test(worker_counters_sum_by_source_and_result),
        cmocka_unit_test(cache_and_session_families_list_every_label_value),
    };
    return cmocka_run_group_tests_name("unit/node/metrics", tests, NULL, NULL);
}

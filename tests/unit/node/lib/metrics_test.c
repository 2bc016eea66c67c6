/* tests/unit/node/lib/metrics_test.c: the Prometheus text of
 * node/lib/metrics_text.c (escaping, histograms, numbers) and the routes'
 * per-worker counting of node/lib/route_counters.c, without a server. The
 * registered families (cache reads, session lookups, shed requests among
 * them): metrics_registry_test.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <shoal/metrics.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(label_values_escape_backslash_quote_and_newline),
        cmocka_unit_test(help_escapes_backslash_and_newline_but_not_quotes),
        cmocka_unit_test(values_are_integers_or_exact_floats),
        cmocka_unit_test(histograms_are_cumulative_with_le_last),
        cmocka_unit_test(observations_land_in_their_class_and_bucket),
    };
    return cmocka_run_group_tests_name("unit/node/metrics", tests, NULL, NULL);
}

/* node/lib/metrics_registry.c: the metrics services and extensions register
 * (metrics.h): registration at setup, counting per worker, the scrape. */
#include "metrics_registry.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum metric_kind {
    METRIC_COUNTER,
    METRIC_HISTOGRAM,
} metric_kind;

typedef struct metric_family {
    metric_kind kind;
    char *name;
    char *help;
    char *label;  /* NULL: one series without labels */
    char **values; /* value_count of them, when labelled */
    size_t value_count; /* series: 1 without a label */
    double *bounds; /* a histogram's, bound_count of them */
    size_t bound_count;
    /* The family's cells in every worker: series after series, a counter's
     * one cell each, a histogram's buckets (+Inf last) and then its sum. */
    size_t first_cell;
    size_t cells_per_series;
    struct metric_family *next;
} metric_family;

/* The handles are the families: the two names keep a counter from being
 * passed where a histogram is wanted. */
struct shoal_counter {
    metric_family family;
};
struct shoal_histogram {
    metric_family family;
};

struct shoal_metric_registry {
    metric_family *first; /* in the order of registration */
    metric_family **tail;
    size_t cell_count;
};

shoal_metric_registry *shoal_metric_registry_new(void)
{
    shoal_metric_registry *registry = calloc(1, sizeof *registry);
    if (registry != NULL)
        registry->tail = &registry->first;
    return registry;
}

static void family_free(metric_family *family)
{
    free(family->name);
    free(family->help);
    free(family->label);
    if (family->values != NULL)
        for (size_t i = 0; i < family->value_count; i++)
            free(family->values[i]);
    free(family->values);
    free(family->bounds);
}

void shoal_metric_registry_free(shoal_metric_registry *registry)
{
    if (registry == NULL)
        return;
    for (metric_family *family = registry->first; family != NULL;) {
        metric_family *next = family->next;
        family_free(family);
        free(family); /* the handle it is the first member of */
        family = next;
    }
    free(registry);
}

size_t shoal_metric_registry_cells(const shoal_metric_registry *registry)
{
    return registry != NULL ? registry->cell_count : 0;
}

/* ---- registration ------------------------------------------------------------- */

static bool name_valid(const char *name)
{
    if (name == NULL || name[0] == '\0' || (name[0] >= '0' && name[0] <= '9'))
        return false;
    return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:") == strlen(name);
}

/* Label names have no colon, and those starting with __ are Prometheus's. */
static bool label_valid(const char *label)
{
    if (label[0] == '\0' || (label[0] >= '0' && label[0] <= '9') || strncmp(label, "__", 2) == 0)
        return false;
    return strspn(label, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == strlen(label);
}

static bool ends_with(const char *text, const char *suffix)
{
    size_t length = strlen(text);
    size_t suffix_length = strlen(suffix);
    return length >= suffix_length && strcmp(text + length - suffix_length, suffix) == 0;
}

/* Why spec cannot be registered as kind, or NULL; *value_count is the
 * number of series it makes. */
static const char *spec_problem(const shoal_metric_registry *registry, const shoal_metric_spec *spec,
                                metric_kind kind, size_t *value_count)
{
    bool histogram = kind == METRIC_HISTOGRAM;
    if (!name_valid(spec->name))
        return "the name must match [a-zA-Z_:][a-zA-Z0-9_:]*";
    if (kind == METRIC_COUNTER && !ends_with(spec->name, "_total"))
        return "a counter's name ends in _total";
    if (histogram && (ends_with(spec->name, "_total") || ends_with(spec->name, "_bucket") ||
                      ends_with(spec->name, "_sum") || ends_with(spec->name, "_count")))
        return "a histogram's name does not end in _total, _bucket, _sum or _count";
    if (spec->help == NULL || spec->help[0] == '\0')
        return "it needs a help text";
    if (shoal_metrics_core_name_taken(spec->name))
        return "the name is one of the core's own families";
    for (const metric_family *family = registry->first; family != NULL; family = family->next)
        if (strcmp(spec->name, family->name) == 0)
            return "the name is registered already";
    *value_count = 1;
    if (spec->label == NULL)
        return NULL;
    if (!label_valid(spec->label))
        return "the label must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __";
    if (histogram && strcmp(spec->label, "le") == 0)
        return "a histogram's label cannot be le (its buckets')";
    if (spec->values == NULL || spec->values[0] == NULL)
        return "a label needs its values (NULL-terminated)";
    size_t count = 0;
    for (; spec->values[count] != NULL; count++) {
        if (count == SHOAL_METRIC_VALUES_MAX)
            return "a label has at most SHOAL_METRIC_VALUES_MAX values";
        if (spec->values[count][0] == '\0')
            return "a label value cannot be empty";
        for (size_t before = 0; before < count; before++)
            if (strcmp(spec->values[before], spec->values[count]) == 0)
                return "the label's values must be distinct";
    }
    *value_count = count;
    return NULL;
}

static const char *bounds_problem(const double *bounds, size_t bound_count)
{
    if (bound_count == 0 || bound_count > SHOAL_METRIC_BUCKETS_MAX)
        return "a histogram has 1 to SHOAL_METRIC_BUCKETS_MAX buckets";
    for (size_t i = 0; i < bound_count; i++) {
        if (!isfinite(bounds[i]))
            return "bucket bounds are finite (+Inf is always the last bucket)";
        if (i > 0 && !(bounds[i] > bounds[i - 1]))
            return "bucket bounds increase";
    }
    return NULL;
}

static void *register_family(shoal_app *app, const shoal_metric_spec *spec, metric_kind kind,
                             const double *bounds, size_t bound_count)
{
    const char *name = spec != NULL && spec->name != NULL ? spec->name : "(unnamed)";
    if (shoal_app_frozen(app)) {
        shoal_app_fail(app, "cannot register metric %s: setup is over (register in setup or an extension's init)",
                       name);
        return NULL;
    }
    if (spec == NULL) {
        shoal_app_fail(app, "cannot register a metric: the spec is NULL");
        return NULL;
    }
    shoal_metric_registry *registry = shoal_app_metric_registry(app);
    size_t value_count = 0;
    const char *problem = spec_problem(registry, spec, kind, &value_count);
    if (problem == NULL && kind == METRIC_HISTOGRAM)
        problem = bounds_problem(bounds, bound_count);
    if (problem != NULL) {
        shoal_app_fail(app, "cannot register metric %s: %s", name, problem);
        return NULL;
    }

    /* A counter and a histogram handle have the same layout: the family. */
    metric_family *family = calloc(1, kind == METRIC_COUNTER ? sizeof(shoal_counter) : sizeof(shoal_histogram));
    if (family == NULL) {
        shoal_app_fail(app, "cannot register metric %s: out of memory", name);
        return NULL;
    }
    family->kind = kind;
    family->name = strdup(spec->name);
    family->help = strdup(spec->help);
    bool failed = family->name == NULL || family->help == NULL;
    if (spec->label != NULL && !failed) {
        family->label = strdup(spec->label);
        family->values = calloc(value_count, sizeof *family->values);
        failed = family->label == NULL || family->values == NULL;
        for (size_t i = 0; i < value_count && !failed; i++)
            failed = (family->values[i] = strdup(spec->values[i])) == NULL;
    }
    family->value_count = value_count;
    if (kind == METRIC_HISTOGRAM && !failed) {
        family->bounds = malloc(bound_count * sizeof *family->bounds);
        failed = family->bounds == NULL;
        if (!failed)
            memcpy(family->bounds, bounds, bound_count * sizeof *family->bounds);
        family->bound_count = bound_count;
    }
    if (failed) {
        family_free(family);
        free(family);
        shoal_app_fail(app, "cannot register metric %s: out of memory", name);
        return NULL;
    }
    family->cells_per_series = kind == METRIC_COUNTER ? 1 : bound_count + 2;
    family->first_cell = registry->cell_count;
    registry->cell_count += value_count * family->cells_per_series;
    *registry->tail = family;
    registry->tail = &family->next;
    return family;
}

const shoal_counter *shoal_app_counter(shoal_app *app, const shoal_metric_spec *spec)
{
    return register_family(app, spec, METRIC_COUNTER, NULL, 0);
}

const shoal_histogram *shoal_app_histogram(shoal_app *app, const shoal_metric_spec *spec, const double *bounds,
                                           size_t bound_count)
{
    /* The request latency's buckets, as the routes' histogram has them. */
    double latency[SHOAL_METRICS_BUCKETS];
    if (bounds == NULL) {
        for (size_t i = 0; i < SHOAL_METRICS_BUCKETS; i++)
            latency[i] = (double)shoal_metrics_bucket_bounds_ns[i] / 1e9;
        bounds = latency;
        bound_count = SHOAL_METRICS_BUCKETS;
    }
    return register_family(app, spec, METRIC_HISTOGRAM, bounds, bound_count);
}

/* ---- counting (the request path: no lock, no allocation) ------------------------ */

/* Only the worker's own thread writes its cells: a relaxed load and store
 * is the whole add, with no locked instruction. */
static void add(atomic_ullong *cell, unsigned long long n)
{
    atomic_store_explicit(cell, atomic_load_explicit(cell, memory_order_relaxed) + n, memory_order_relaxed);
}

void shoal_count(shoal_ctx *ctx, const shoal_counter *counter, size_t value, unsigned long n)
{
    if (counter == NULL || value >= counter->family.value_count)
        return;
    size_t count;
    atomic_ullong *cells = shoal_ctx_metric_cells(ctx, &count);
    size_t cell = counter->family.first_cell + value;
    if (cell < count)
        add(&cells[cell], n);
}

void shoal_observe(shoal_ctx *ctx, const shoal_histogram *histogram, size_t value, double observed)
{
    if (histogram == NULL || value >= histogram->family.value_count || isnan(observed))
        return;
    const metric_family *family = &histogram->family;
    size_t count;
    atomic_ullong *cells = shoal_ctx_metric_cells(ctx, &count);
    size_t first = family->first_cell + value * family->cells_per_series;
    if (first + family->cells_per_series > count)
        return;
    size_t bucket = 0;
    while (bucket < family->bound_count && observed > family->bounds[bucket])
        bucket++;
    add(&cells[first + bucket], 1);
    /* The sum's bits, as a double, in a cell of the same kind. */
    atomic_ullong *sum_cell = &cells[first + family->bound_count + 1];
    unsigned long long bits = atomic_load_explicit(sum_cell, memory_order_relaxed);
    double sum;
    memcpy(&sum, &bits, sizeof sum);
    sum += observed;
    memcpy(&bits, &sum, sizeof bits);
    atomic_store_explicit(sum_cell, bits, memory_order_relaxed);
}

/* ---- the scrape -------------------------------------------------------------------- */

/* Every cell summed over the workers: counts as integers, a histogram's
 * sums as doubles. */
typedef union cell_total {
    unsigned long long count;
    double sum;
} cell_total;

typedef struct summing {
    const shoal_metric_registry *registry;
    cell_total *totals;
} summing;

static void sum_worker(const atomic_ullong *cells, size_t count, void *data)
{
    summing *run = data;
    for (const metric_family *family = run->registry->first; family != NULL; family = family->next) {
        for (size_t series = 0; series < family->value_count; series++) {
            size_t first = family->first_cell + series * family->cells_per_series;
            for (size_t i = 0; i < family->cells_per_series && first + i < count; i++) {
                unsigned long long bits = atomic_load_explicit(&cells[first + i], memory_order_relaxed);
                if (family->kind == METRIC_HISTOGRAM && i == family->bound_count + 1) {
                    double sum;
                    memcpy(&sum, &bits, sizeof sum);
                    run->totals[first + i].sum += sum;
                } else {
                    run->totals[first + i].count += bits;
                }
            }
        }
    }
}

/* Totals of every cell, calloc'd (0.0 is all bits zero in IEEE 754, so a
 * histogram's sums start at 0 too); NULL when memory ran out or nothing is registered. */
static cell_total *sum_cells(shoal_app *app, const shoal_metric_registry *registry)
{
    if (registry->cell_count == 0)
        return NULL;
    summing run = {registry, calloc(registry->cell_count, sizeof(cell_total))};
    if (run.totals == NULL)
        return NULL;
    shoal_app_metric_cells_each(app, sum_worker, &run);
    return run.totals;
}

unsigned long long shoal_counter_total(shoal_app *app, const shoal_counter *counter, size_t value)
{
    if (counter == NULL || value >= counter->family.value_count)
        return 0;
    shoal_metric_registry *registry = shoal_app_metric_registry(app);
    cell_total *totals = sum_cells(app, registry);
    unsigned long long total = totals != NULL ? totals[counter->family.first_cell + value].count : 0;
    free(totals);
    return total;
}

void shoal_metric_registry_write(shoal_app *app, shoal_metrics_text *text)
{
    shoal_metric_registry *registry = shoal_app_metric_registry(app);
    if (registry == NULL || registry->first == NULL)
        return;
    cell_total *totals = sum_cells(app, registry);
    if (totals == NULL) {
        text->failed = 1;
        return;
    }
    unsigned long long buckets[SHOAL_METRIC_BUCKETS_MAX + 1];
    for (const metric_family *family = registry->first; family != NULL; family = family->next) {
        bool histogram = family->kind == METRIC_HISTOGRAM;
        shoal_metrics_family(text, family->name, histogram ? "histogram" : "counter", family->help);
        for (size_t series = 0; series < family->value_count; series++) {
            shoal_metrics_label label = {family->label, family->label != NULL ? family->values[series] : NULL};
            size_t label_count = family->label != NULL ? 1 : 0;
            const cell_total *cells = &totals[family->first_cell + series * family->cells_per_series];
            if (!histogram) {
                shoal_metrics_sample(text, family->name, NULL, &label, label_count, (double)cells[0].count);
                continue;
            }
            for (size_t i = 0; i <= family->bound_count; i++)
                buckets[i] = cells[i].count;
            shoal_metrics_histogram_of(text, family->name, &label, label_count, family->bounds, family->bound_count,
                                       buckets, cells[family->bound_count + 1].sum);
        }
    }
    free(totals);
}

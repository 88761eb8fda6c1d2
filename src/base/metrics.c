/* metrics.c: the metrics registry and its Prometheus text (see metrics.h).
 * Families and series are linked lists appended under the registry's lock
 * and never removed before metrics_free; values are C11 atomics updated
 * with relaxed order (each is an independent number: nothing is published
 * through them). */
#include "metrics.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum family_kind { FAM_COUNTER, FAM_GAUGE, FAM_HISTOGRAM } family_kind;

typedef struct family family;

struct metric {
    family *fam;
    char *labels;             /* "" when none */
    metric *next;             /* in fam */
    _Atomic uint64_t count;   /* counter */
    _Atomic int64_t gauge;    /* gauge */
    _Atomic uint64_t *bucket; /* histogram: n_bounds + 1 (the last is +Inf) */
    _Atomic uint64_t sum;     /* histogram, in units */
};

struct family {
    char *name, *help;
    family_kind kind;
    double bounds[METRICS_MAX_BUCKETS];
    uint64_t limit[METRICS_MAX_BUCKETS]; /* bounds in whole units */
    size_t n_bounds;
    double unit;
    metric *first, *last;
    family *next;
};

struct metrics {
    pthread_mutex_t lock;
    family *first, *last;
};

static const char *const kind_name[] = {"counter", "gauge", "histogram"};

metrics *metrics_new(void)
{
    metrics *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

static void metric_free(metric *s)
{
    free(s->labels);
    free((void *)s->bucket);
    free(s);
}

void metrics_free(metrics *m)
{
    if (!m) return;
    family *f = m->first;
    while (f) {
        family *nf = f->next;
        metric *s = f->first;
        while (s) {
            metric *ns = s->next;
            metric_free(s);
            s = ns;
        }
        free(f->name);
        free(f->help);
        free(f);
        f = nf;
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* Under the lock: the family of name, created if new; NULL on a kind clash
 * or out of memory. */
static family *family_get(metrics *m, const char *name, const char *help,
                          family_kind kind, const double *bounds,
                          size_t n_bounds, double unit)
{
    for (family *f = m->first; f; f = f->next)
        if (strcmp(f->name, name) == 0) {
            assert(f->kind == kind); /* one name, one type */
            return f->kind == kind ? f : NULL;
        }
    family *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    if (!f->name || !f->help) {
        free(f->name);
        free(f->help);
        free(f);
        return NULL;
    }
    f->kind = kind;
    if (kind == FAM_HISTOGRAM) {
        assert(n_bounds >= 1 && n_bounds <= METRICS_MAX_BUCKETS && unit > 0);
        if (n_bounds > METRICS_MAX_BUCKETS) n_bounds = METRICS_MAX_BUCKETS;
        f->n_bounds = n_bounds;
        f->unit = unit;
        for (size_t i = 0; i < n_bounds; i++) {
            assert(i == 0 || bounds[i] > bounds[i - 1]);
            f->bounds[i] = bounds[i];
            /* the largest whole number of units that is <= the bound */
            f->limit[i] = (uint64_t)floor(bounds[i] / unit * (1 + 1e-12));
        }
    }
    if (m->last)
        m->last->next = f;
    else
        m->first = f;
    m->last = f;
    return f;
}

static metric *series(metrics *m, const char *name, const char *help,
                      const char *labels, family_kind kind,
                      const double *bounds, size_t n_bounds, double unit)
{
    if (!m) return NULL;
    if (!labels) labels = "";
    assert(!strpbrk(labels, "\\\n{}"));
    pthread_mutex_lock(&m->lock);
    metric *s = NULL;
    family *f = family_get(m, name, help, kind, bounds, n_bounds, unit);
    if (f) {
        for (s = f->first; s; s = s->next)
            if (strcmp(s->labels, labels) == 0) break;
    }
    if (f && !s) {
        s = calloc(1, sizeof *s);
        if (s) {
            s->fam = f;
            s->labels = strdup(labels);
            if (kind == FAM_HISTOGRAM)
                s->bucket = calloc(f->n_bounds + 1, sizeof *s->bucket);
            if (!s->labels || (kind == FAM_HISTOGRAM && !s->bucket)) {
                metric_free(s);
                s = NULL;
            } else {
                if (f->last)
                    f->last->next = s;
                else
                    f->first = s;
                f->last = s;
            }
        }
    }
    pthread_mutex_unlock(&m->lock);
    return s;
}

metric *metrics_counter(metrics *m, const char *name, const char *help,
                        const char *labels)
{
    return series(m, name, help, labels, FAM_COUNTER, NULL, 0, 1);
}

metric *metrics_gauge(metrics *m, const char *name, const char *help,
                      const char *labels)
{
    return series(m, name, help, labels, FAM_GAUGE, NULL, 0, 1);
}

metric *metrics_histogram(metrics *m, const char *name, const char *help,
                          const char *labels, const double *bounds,
                          size_t n_bounds, double unit)
{
    return series(m, name, help, labels, FAM_HISTOGRAM, bounds, n_bounds, unit);
}

/* ---- updates ------------------------------------------------------------ */

void metric_add(metric *c, uint64_t n)
{
    if (!c) return;
    assert(c->fam->kind == FAM_COUNTER);
    atomic_fetch_add_explicit(&c->count, n, memory_order_relaxed);
}

void metric_inc(metric *c) { metric_add(c, 1); }

void metric_set(metric *g, int64_t v)
{
    if (!g) return;
    assert(g->fam->kind == FAM_GAUGE);
    atomic_store_explicit(&g->gauge, v, memory_order_relaxed);
}

void metric_gauge_add(metric *g, int64_t delta)
{
    if (!g) return;
    assert(g->fam->kind == FAM_GAUGE);
    atomic_fetch_add_explicit(&g->gauge, delta, memory_order_relaxed);
}

void metric_observe(metric *h, uint64_t v)
{
    if (!h) return;
    const family *f = h->fam;
    assert(f->kind == FAM_HISTOGRAM);
    size_t i = 0;
    while (i < f->n_bounds && v > f->limit[i]) i++;
    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum, v, memory_order_relaxed);
}

uint64_t metric_counter_value(const metric *c)
{
    return c ? atomic_load_explicit(&((metric *)c)->count, memory_order_relaxed)
             : 0;
}

int64_t metric_gauge_value(const metric *g)
{
    return g ? atomic_load_explicit(&((metric *)g)->gauge, memory_order_relaxed)
             : 0;
}

uint64_t metric_histogram_count(const metric *h)
{
    uint64_t n = 0;
    if (!h) return 0;
    for (size_t i = 0; i <= h->fam->n_bounds; i++)
        n += atomic_load_explicit(&((metric *)h)->bucket[i],
                                  memory_order_relaxed);
    return n;
}

/* ---- exposition --------------------------------------------------------- */

/* name{labels[,extra]} */
static void series_name(FILE *out, const char *name, const char *suffix,
                        const char *labels, const char *extra)
{
    fprintf(out, "%s%s", name, suffix);
    int any = labels[0] || (extra && extra[0]);
    if (!any) return;
    fprintf(out, "{%s%s%s}", labels, labels[0] && extra && extra[0] ? "," : "",
            extra ? extra : "");
}

static void render_histogram(FILE *out, const family *f, metric *s)
{
    uint64_t cum = 0;
    char le[64];
    for (size_t i = 0; i <= f->n_bounds; i++) {
        cum += atomic_load_explicit(&s->bucket[i], memory_order_relaxed);
        if (i < f->n_bounds)
            snprintf(le, sizeof le, "le=\"%.9g\"", f->bounds[i]);
        else
            snprintf(le, sizeof le, "le=\"+Inf\"");
        series_name(out, f->name, "_bucket", s->labels, le);
        fprintf(out, " %" PRIu64 "\n", cum);
    }
    uint64_t sum = atomic_load_explicit(&s->sum, memory_order_relaxed);
    series_name(out, f->name, "_sum", s->labels, NULL);
    fprintf(out, " %.9g\n", (double)sum * f->unit);
    series_name(out, f->name, "_count", s->labels, NULL);
    fprintf(out, " %" PRIu64 "\n", cum);
}

char *metrics_render(metrics *m, size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *out = open_memstream(&buf, &n);
    if (!out) return NULL;
    pthread_mutex_lock(&m->lock);
    for (family *f = m->first; f; f = f->next) {
        fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                kind_name[f->kind]);
        for (metric *s = f->first; s; s = s->next) {
            switch (f->kind) {
            case FAM_COUNTER:
                series_name(out, f->name, "", s->labels, NULL);
                fprintf(out, " %" PRIu64 "\n",
                        atomic_load_explicit(&s->count, memory_order_relaxed));
                break;
            case FAM_GAUGE:
                series_name(out, f->name, "", s->labels, NULL);
                fprintf(out, " %" PRId64 "\n",
                        atomic_load_explicit(&s->gauge, memory_order_relaxed));
                break;
            case FAM_HISTOGRAM: render_histogram(out, f, s); break;
            }
        }
    }
    pthread_mutex_unlock(&m->lock);
    if (fclose(out) != 0) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

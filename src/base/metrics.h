/* metrics.h: a registry of Prometheus metrics (counters, gauges,
 * histograms) and their text exposition (format 0.0.4), for a process that
 * serves them on its own HTTP listener.
 *
 * A series is a metric name plus a fixed set of labels, registered once
 * (registering the same name and labels again returns the same series);
 * the series of one name form a family with one HELP and TYPE. Updating a
 * series is a relaxed atomic operation, safe from any thread and cheap
 * enough for every call; registering and rendering take the registry's
 * lock, so a scrape from another thread always sees whole families. The
 * values of one scrape are not one snapshot: each is read once, and a
 * histogram's _count is the sum of the bucket counts it rendered, so its
 * +Inf bucket and _count always agree. */
#ifndef PARLEY_METRICS_H
#define PARLEY_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct metrics metrics;
typedef struct metric metric;

metrics *metrics_new(void);
/* Frees the registry and every series (no update may run any more). */
void metrics_free(metrics *m);

/* Registers (or finds) the series name{labels}. labels is "" / NULL or
 * `key="value",key="value"`, written as given (values hold no `"`, `\` or
 * newline). NULL when out of memory, or when the name is already a family
 * of another type (a programming error, also asserted). */
metric *metrics_counter(metrics *m, const char *name, const char *help,
                        const char *labels);
metric *metrics_gauge(metrics *m, const char *name, const char *help,
                      const char *labels);
/* bounds: the buckets' upper bounds in the exposed unit (seconds, bytes,
 * messages), ascending, at most METRICS_MAX_BUCKETS; observations are whole
 * numbers of `unit` (1e-6 to observe microseconds of a metric in seconds,
 * 1 for counts). A family's first series fixes its buckets. */
#define METRICS_MAX_BUCKETS 24
metric *metrics_histogram(metrics *m, const char *name, const char *help,
                          const char *labels, const double *bounds,
                          size_t n_bounds, double unit);

/* Updates; every one accepts NULL (a series that could not be made). */
void metric_add(metric *c, uint64_t n); /* counter */
void metric_inc(metric *c);             /* counter + 1 */
void metric_set(metric *g, int64_t v);  /* gauge */
void metric_gauge_add(metric *g, int64_t delta);
void metric_observe(metric *h, uint64_t v); /* histogram, in units */

/* Current values (tests, and callers that log them). */
uint64_t metric_counter_value(const metric *c);
int64_t metric_gauge_value(const metric *g);
uint64_t metric_histogram_count(const metric *h);

/* The whole registry as Prometheus text, families in registration order;
 * malloc'd (free it), *len its length. NULL when out of memory. */
char *metrics_render(metrics *m, size_t *len);

#endif

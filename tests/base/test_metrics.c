/* test_metrics.c: CUnit tests of base/metrics.c: the Prometheus text of
 * counters, gauges and histograms (cumulative buckets, _sum in the exposed
 * unit, _count equal to +Inf), families grouping series of one name,
 * registering twice returning the same series, and updates from several
 * threads adding up. */
#include <CUnit/Basic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static char *render(metrics *m)
{
    size_t len = 0;
    char *t = metrics_render(m, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(strlen(t), len);
    return t;
}

static void test_counters_and_gauges(void)
{
    metrics *m = metrics_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    metric *ok = metrics_counter(m, "x_calls_total", "Calls.",
                                 "method=\"Get\",code=\"OK\"");
    metric *nf = metrics_counter(m, "x_calls_total", "ignored",
                                 "method=\"Get\",code=\"NOT_FOUND\"");
    metric *g = metrics_gauge(m, "x_streams", "Open streams.", NULL);
    CU_ASSERT_PTR_EQUAL(
        metrics_counter(m, "x_calls_total", "", "method=\"Get\",code=\"OK\""),
        ok);
    metric_inc(ok);
    metric_add(ok, 41);
    metric_inc(nf);
    metric_set(g, 7);
    metric_gauge_add(g, -2);
    metric_inc(NULL); /* a series that could not be made: harmless */
    CU_ASSERT_EQUAL(metric_counter_value(ok), 42);
    CU_ASSERT_EQUAL(metric_gauge_value(g), 5);
    char *t = render(m);
    CU_ASSERT_STRING_EQUAL(
        t, "# HELP x_calls_total Calls.\n"
           "# TYPE x_calls_total counter\n"
           "x_calls_total{method=\"Get\",code=\"OK\"} 42\n"
           "x_calls_total{method=\"Get\",code=\"NOT_FOUND\"} 1\n"
           "# HELP x_streams Open streams.\n"
           "# TYPE x_streams gauge\n"
           "x_streams 5\n");
    free(t);
    metrics_free(m);
}

static void test_histogram(void)
{
    metrics *m = metrics_new();
    static const double secs[] = {0.001, 0.01, 0.1};
    metric *h =
        metrics_histogram(m, "x_seconds", "Latency.", "m=\"a\"", secs, 3, 1e-6);
    metric_observe(h, 1000);    /* 0.001 s: in le=0.001 (bounds inclusive) */
    metric_observe(h, 1001);    /* just over */
    metric_observe(h, 50000);   /* 0.05 s */
    metric_observe(h, 3000000); /* 3 s: only +Inf */
    CU_ASSERT_EQUAL(metric_histogram_count(h), 4);
    char *t = render(m);
    CU_ASSERT_STRING_EQUAL(t, "# HELP x_seconds Latency.\n"
                              "# TYPE x_seconds histogram\n"
                              "x_seconds_bucket{m=\"a\",le=\"0.001\"} 1\n"
                              "x_seconds_bucket{m=\"a\",le=\"0.01\"} 2\n"
                              "x_seconds_bucket{m=\"a\",le=\"0.1\"} 3\n"
                              "x_seconds_bucket{m=\"a\",le=\"+Inf\"} 4\n"
                              "x_seconds_sum{m=\"a\"} 3.052001\n"
                              "x_seconds_count{m=\"a\"} 4\n");
    free(t);
    /* Without labels, and counting whole things (unit 1). */
    static const double sizes[] = {1, 8, 64};
    metric *b =
        metrics_histogram(m, "x_batch", "Batch sizes.", "", sizes, 3, 1);
    metric_observe(b, 1);
    metric_observe(b, 9);
    t = render(m);
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "x_batch_bucket{le=\"1\"} 1\n"
                                     "x_batch_bucket{le=\"8\"} 1\n"
                                     "x_batch_bucket{le=\"64\"} 2\n"
                                     "x_batch_bucket{le=\"+Inf\"} 2\n"
                                     "x_batch_sum 10\nx_batch_count 2\n"));
    free(t);
    metrics_free(m);
}

typedef struct worker {
    metric *c, *h;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < 100000; i++) {
        metric_inc(w->c);
        metric_observe(w->h, (uint64_t)(i % 3));
    }
    return NULL;
}

static void test_threads(void)
{
    metrics *m = metrics_new();
    static const double b[] = {0, 1};
    worker w = {metrics_counter(m, "x_total", "n", NULL),
                metrics_histogram(m, "x_h", "h", NULL, b, 2, 1)};
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, work, &w);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    CU_ASSERT_EQUAL(metric_counter_value(w.c), 400000);
    CU_ASSERT_EQUAL(metric_histogram_count(w.h), 400000);
    char *txt = render(m);
    CU_ASSERT_PTR_NOT_NULL(strstr(txt, "x_h_bucket{le=\"0\"} 133336\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(txt, "x_h_bucket{le=\"1\"} 266668\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(txt, "x_h_sum 399996\n"));
    free(txt);
    metrics_free(m);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("metrics", NULL, NULL);
    if (!s ||
        !CU_add_test(s, "counters and gauges", test_counters_and_gauges) ||
        !CU_add_test(s, "histograms", test_histogram) ||
        !CU_add_test(s, "updates from threads", test_threads)) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}

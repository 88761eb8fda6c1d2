/* hist_test.c: checks hist.c against exact percentiles of known data: every
 * reported percentile is within the histogram's relative error bound. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "hist.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int fails;
#define CHECK(c, ...)                     \
    do {                                  \
        if (!(c)) {                       \
            fails++;                      \
            printf("FAIL: " __VA_ARGS__); \
            printf("\n");                 \
        }                                 \
    } while (0)

int main(void)
{
    hist *h = hist_new();
    CHECK(h != NULL, "hist_new");
    if (!h) return 1;
    CHECK(hist_percentile(h, 99) == 0, "empty histogram reports 0");
    /* bucket bounds are contiguous and contain their values */
    for (uint64_t v = 0; v < 5000000; v += 7) {
        size_t b = hist_bucket_of(v);
        CHECK(hist_bucket_low(b) <= v && v < hist_bucket_high(b),
              "value %llu outside its bucket", (unsigned long long)v);
        if (b > 0)
            CHECK(hist_bucket_high(b - 1) == hist_bucket_low(b),
                  "gap before bucket %zu", b);
        if (fails > 5) break;
    }
    /* a heavy-tailed sample: exact vs reported percentiles */
    enum { N = 200000 };
    uint64_t *v = malloc(N * sizeof *v);
    uint64_t s = 88172645463325252ULL;
    for (int i = 0; i < N; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        double u = (double)(s >> 11) / 9007199254740992.0;
        v[i] = (uint64_t)(20000.0 /
                          pow(1.0 - u * 0.9999, 0.8)); /* ns, Pareto-ish */
        hist_record(h, v[i]);
    }
    qsort(v, N, sizeof *v, cmp_u64);
    const double ps[] = {50, 90, 99, 99.9, 100};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        size_t rank = (size_t)ceil(ps[i] / 100.0 * N);
        uint64_t exact = v[rank - 1];
        uint64_t got = hist_percentile(h, ps[i]);
        double rel = fabs((double)got - (double)exact) / (double)exact;
        CHECK(rel <= 1.0 / (1 << HIST_SUB_BITS),
              "p%.1f exact %llu got %llu (rel %.4f)", ps[i],
              (unsigned long long)exact, (unsigned long long)got, rel);
    }
    CHECK(hist_count(h) == N, "count");
    CHECK(hist_max(h) == v[N - 1] && hist_min(h) == v[0], "min/max");
    /* merge doubles counts, keeps percentiles */
    hist *g = hist_new();
    hist_merge(g, h);
    hist_merge(g, h);
    CHECK(hist_count(g) == 2 * (uint64_t)N, "merge count");
    CHECK(hist_percentile(g, 99) == hist_percentile(h, 99), "merge p99");
    hist_free(g);
    hist_free(h);
    free(v);
    printf("%d passed, %d failed\n", fails ? 0 : 1, fails ? 1 : 0);
    return fails ? 1 : 0;
}

/* hist.c: log-bucketed latency histogram (see hist.h). With M = 2^SUB_BITS
 * sub-buckets, a value v whose highest set bit is b lands in bucket
 * k*M + (v >> k) where k = max(0, b - SUB_BITS): values below 2M are exact,
 * larger ones keep their top SUB_BITS+1 bits. */
#include "hist.h"

#include <stdlib.h>
#include <string.h>

#define HIST_M ((uint64_t)1 << HIST_SUB_BITS)
#define HIST_NBUCKETS ((size_t)((HIST_MAX_BITS - HIST_SUB_BITS + 1) * HIST_M))

struct hist {
    uint64_t count;
    uint64_t min, max;
    long double sum;
    uint64_t bins[HIST_NBUCKETS];
};

hist *hist_new(void)
{
    hist *h = calloc(1, sizeof *h);
    if (h) hist_reset(h);
    return h;
}

void hist_free(hist *h) { free(h); }

void hist_reset(hist *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

size_t hist_bucket_of(uint64_t v)
{
    if (v >= ((uint64_t)1 << HIST_MAX_BITS))
        v = ((uint64_t)1 << HIST_MAX_BITS) - 1;
    if (v < 2 * HIST_M) return (size_t)v;
    int b = 63 - __builtin_clzll(v);
    int k = b - HIST_SUB_BITS;
    return (size_t)((uint64_t)k * HIST_M + (v >> k));
}

static int hist_shift_of(size_t idx)
{
    if (idx < 2 * HIST_M) return 0;
    return (int)(idx / HIST_M) - 1;
}

uint64_t hist_bucket_low(size_t idx)
{
    int k = hist_shift_of(idx);
    return ((uint64_t)idx - (uint64_t)k * HIST_M) << k;
}

uint64_t hist_bucket_high(size_t idx)
{
    return hist_bucket_low(idx) + ((uint64_t)1 << hist_shift_of(idx));
}

void hist_record(hist *h, uint64_t v)
{
    h->bins[hist_bucket_of(v)]++;
    h->count++;
    h->sum += v;
    if (v < h->min) h->min = v;
    if (v > h->max) h->max = v;
}

void hist_merge(hist *dst, const hist *src)
{
    for (size_t i = 0; i < HIST_NBUCKETS; i++) dst->bins[i] += src->bins[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min) dst->min = src->min;
    if (src->max > dst->max) dst->max = src->max;
}

uint64_t hist_count(const hist *h) { return h->count; }
uint64_t hist_min(const hist *h) { return h->count ? h->min : 0; }
uint64_t hist_max(const hist *h) { return h->max; }
double hist_mean(const hist *h)
{
    return h->count ? (double)(h->sum / h->count) : 0.0;
}

uint64_t hist_percentile(const hist *h, double p)
{
    if (!h->count) return 0;
    if (p < 0) p = 0;
    if (p > 100) p = 100;
    uint64_t rank = (uint64_t)((p / 100.0) * (double)h->count + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > h->count) rank = h->count;
    uint64_t seen = 0;
    for (size_t i = 0; i < HIST_NBUCKETS; i++) {
        seen += h->bins[i];
        if (seen >= rank) {
            uint64_t lo = hist_bucket_low(i), hi = hist_bucket_high(i);
            uint64_t mid = lo + (hi - lo - 1) / 2;
            if (mid < h->min) mid = h->min;
            if (mid > h->max) mid = h->max;
            return mid;
        }
    }
    return h->max;
}

/* hist.h: an HDR-style latency histogram. Values (nanoseconds, or any
 * non-negative integer) fall into log-bucketed bins: 2^HIST_SUB_BITS linear
 * sub-buckets per power of two, so any reported percentile is within a
 * relative error of 2^-HIST_SUB_BITS (under 1%) of a recorded value. Fixed
 * size, no allocation after hist_new, mergeable by adding counts. */
#ifndef PARLEY_BENCH_HIST_H
#define PARLEY_BENCH_HIST_H

#include <stddef.h>
#include <stdint.h>

#define HIST_SUB_BITS 7
#define HIST_MAX_BITS 44 /* values up to 2^44 ns (about 4.9 hours) */

typedef struct hist hist;

hist *hist_new(void);
void hist_free(hist *h);
void hist_reset(hist *h);
/* Values at or above 2^HIST_MAX_BITS are clamped into the top bucket. */
void hist_record(hist *h, uint64_t v);
/* dst += src. */
void hist_merge(hist *dst, const hist *src);
uint64_t hist_count(const hist *h);
uint64_t hist_min(const hist *h);
uint64_t hist_max(const hist *h);
double hist_mean(const hist *h);
/* The value at percentile p (0..100): the midpoint of the bucket holding the
 * ceil(p/100 * count)-th smallest value, clamped to [min, max]. 0 if empty. */
uint64_t hist_percentile(const hist *h, double p);
/* Index and bounds of the bucket a value lands in (exposed for tests). */
size_t hist_bucket_of(uint64_t v);
uint64_t hist_bucket_low(size_t idx);
uint64_t hist_bucket_high(size_t idx); /* exclusive */

#endif

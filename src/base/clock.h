/* clock.h: the two clocks parley reads. Wall time stamps what is stored
 * (created_at_ms, token expiry); monotonic time measures intervals
 * (timeouts, shutdown deadlines, benchmarks) and never jumps. */
#ifndef PARLEY_CLOCK_H
#define PARLEY_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
static inline int64_t clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Nanoseconds on CLOCK_MONOTONIC, from an arbitrary start. */
static inline uint64_t clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline int64_t clock_mono_ms(void)
{
    return (int64_t)(clock_mono_ns() / 1000000u);
}

#endif

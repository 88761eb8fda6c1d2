/* lg_proc.h: resource readings for the benchmark report: CPU time of other
 * processes (/proc/PID/stat utime+stime), their memory (VmHWM, VmRSS from
 * /proc/PID/status), and the load generator's own CPU (getrusage). */
#ifndef PARLEY_BENCH_LG_PROC_H
#define PARLEY_BENCH_LG_PROC_H

#include <stdint.h>
#include <sys/types.h>

/* user+system CPU of pid in nanoseconds; -1 if unreadable. */
int64_t lg_proc_cpu_ns(pid_t pid);
/* Peak and current resident set of pid in KiB; -1 if unreadable. */
int lg_proc_mem_kb(pid_t pid, int64_t *hwm_kb, int64_t *rss_kb);
/* This process's own user+system CPU in nanoseconds. */
int64_t lg_self_cpu_ns(void);
/* The process ids of a comma list ("12,34") into pids (at most max, the
 * rest ignored); their count, or -1 for an item that is no process id. */
int lg_proc_parse_pids(const char *list, pid_t *pids, int max);

#endif

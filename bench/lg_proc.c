/* lg_proc.c: CPU and memory readings of processes from /proc, and the list
 * of process ids to read them from (see lg_proc.h). */
#include "lg_proc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "settings.h"

int64_t lg_proc_cpu_ns(pid_t pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    /* comm may hold spaces: fields start after the last ')' */
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    unsigned long long ut = 0, st = 0;
    /* after ')': state(3) ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
               &ut, &st) != 2)
        return -1;
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0) hz = 100;
    return (int64_t)((ut + st) * (1000000000ULL / (unsigned long long)hz));
}

int lg_proc_mem_kb(pid_t pid, int64_t *hwm_kb, int64_t *rss_kb)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    *hwm_kb = *rss_kb = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f)) {
        long long v;
        if (sscanf(line, "VmHWM: %lld", &v) == 1)
            *hwm_kb = v;
        else if (sscanf(line, "VmRSS: %lld", &v) == 1)
            *rss_kb = v;
    }
    fclose(f);
    return (*hwm_kb >= 0 && *rss_kb >= 0) ? 0 : -1;
}

int64_t lg_self_cpu_ns(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
           (int64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

typedef struct pid_list {
    pid_t *pids;
    int n, max;
} pid_list;

static int lg_proc_add_pid(const char *item, void *ud)
{
    pid_list *l = ud;
    char *end;
    long v = strtol(item, &end, 10);
    if (*end || v <= 0 || v > INT32_MAX) return -1;
    if (l->n < l->max) l->pids[l->n++] = (pid_t)v;
    return 0;
}

int lg_proc_parse_pids(const char *list, pid_t *pids, int max)
{
    pid_list l = {pids, 0, max};
    return settings_list_each(list, lg_proc_add_pid, &l) == 0 ? l.n : -1;
}

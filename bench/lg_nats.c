/* lg_nats.c: splits a NATS server's byte stream into commands (see
 * lg_nats.h). */
#include "lg_nats.h"

#include <stdlib.h>
#include <string.h>

/* Tokens of a MSG line after "MSG ": subject, sid, [reply,] size. */
#define LG_NATS_MSG_TOKENS_MAX 4

static int starts(const char *s, size_t n, const char *word)
{
    size_t w = strlen(word);
    return n >= w && memcmp(s, word, w) == 0;
}

long lg_nats_next(const uint8_t *p, size_t len, lg_nats_cmd *out)
{
    const char *s = (const char *)p;
    const char *eol = memmem(s, len, "\r\n", 2);
    if (!eol) return 0;
    size_t ll = (size_t)(eol - s);
    memset(out, 0, sizeof *out);
    out->line = s;
    out->line_len = ll;
    out->reply = "";
    if (!starts(s, ll, "MSG ")) {
        out->kind = starts(s, ll, "PING")   ? LG_NATS_PING
                    : starts(s, ll, "PONG") ? LG_NATS_PONG
                    : starts(s, ll, "INFO") ? LG_NATS_INFO
                    : starts(s, ll, "-ERR") ? LG_NATS_ERR
                                            : LG_NATS_OTHER;
        return (long)(ll + 2);
    }
    const char *t[LG_NATS_MSG_TOKENS_MAX];
    size_t tl[LG_NATS_MSG_TOKENS_MAX], k = 0;
    const char *q = s + 4;
    while (q < eol) {
        if (k == LG_NATS_MSG_TOKENS_MAX) return -1;
        const char *sp = memchr(q, ' ', (size_t)(eol - q));
        const char *te = sp ? sp : eol;
        t[k] = q;
        tl[k++] = (size_t)(te - q);
        q = sp ? sp + 1 : eol;
    }
    if (k < 3) return -1;
    char *end;
    unsigned long sz = strtoul(t[k - 1], &end, 10);
    if (end != t[k - 1] + tl[k - 1]) return -1;
    size_t need = ll + 2 + sz + 2;
    if (len < need) return 0;
    out->kind = LG_NATS_MSG;
    out->subject = t[0];
    out->subject_len = tl[0];
    out->sid = atoi(t[1]);
    if (k == 4) {
        out->reply = t[2];
        out->reply_len = tl[2];
    }
    out->payload = eol + 2;
    out->payload_len = sz;
    return (long)need;
}

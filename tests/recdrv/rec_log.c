/* Log lines of the recording driver, written the same way by the driver and by the test that
 * predicts them (rec.h). */
#include "rec.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void add(struct rec_line *l, const char *fmt, ...)
{
    if (l->overflow)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(l->buf + l->len, sizeof l->buf - l->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof l->buf - l->len) {
        l->overflow = 1;
        return;
    }
    l->len += (size_t)n;
}

void rec_begin(struct rec_line *l, const char *name)
{
    l->len = 0;
    l->overflow = 0;
    l->buf[0] = 0;
    add(l, "%s", name);
}

void rec_u64(struct rec_line *l, uint64_t v)
{
    add(l, " %llu", (unsigned long long)v);
}

void rec_ptr(struct rec_line *l, uint64_t v)
{
    add(l, " 0x%llx", (unsigned long long)v);
}

void rec_float(struct rec_line *l, float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    add(l, " f%08x", b);
}

void rec_bytes(struct rec_line *l, const void *p, size_t n)
{
    const unsigned char *b = p;
    if (!p) {
        add(l, " -");
        return;
    }
    add(l, " [");
    for (size_t i = 0; i < n; i++)
        add(l, "%02x", b[i]);
    add(l, "]");
}

void rec_handles(struct rec_line *l, const void *arr, size_t n)
{
    if (!arr) {
        add(l, " -");
        return;
    }
    add(l, " [");
    for (size_t i = 0; i < n; i++) {
        uint64_t v;
        memcpy(&v, (const char *)arr + 8 * i, 8);
        add(l, i ? " 0x%llx" : "0x%llx", (unsigned long long)v);
    }
    add(l, "]");
}

void rec_str(struct rec_line *l, const char *s)
{
    add(l, s ? " \"%s\"" : " -", s);
}

void rec_o(struct rec_line *l, const void *p)
{
    add(l, p ? " o" : " -");
}

void rec_sep(struct rec_line *l)
{
    add(l, " |");
}

uint64_t rec_out_value(const char *name, int k)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return (h + (uint64_t)k * 7919) % 97 + 1;
}

void rec_fill(void *p, size_t n, int k)
{
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(i * 13 + (size_t)k * 29 + 7);
}

#include "main_tenants.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "size.h"

/* inih reads the file through our line reader, so that every message can name its line. */
struct parse {
    FILE *f;
    int line;
    struct vg_tenants *ts;
    struct vg_tenant_def *cur;
    int device_count;
    char *err;
    size_t errlen;
    const char *path;
    int failed;
    int section_line;          /* the line of the last [section] header read */
    char section[64];          /* its name, until a key of it arrives */
};

static void fail_at(struct parse *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail_at(struct parse *p, int line, const char *fmt, ...)
{
    if (p->failed)
        return; /* the first error is the one reported */
    p->failed = 1;
    int n = snprintf(p->err, p->errlen, "%s:%d: ", p->path, line);
    if (n < 0 || (size_t)n >= p->errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

static void section_without_keys(struct parse *p)
{
    if (p->section[0] && (!p->cur || strcmp(p->cur->name, p->section) != 0))
        fail_at(p, p->section_line, "[%s] has no token (token = ... or token_sha256 = ...)", p->section);
}

/* Reads a line for inih, counting lines and noting [section] headers (inih reports a section
 * only with its first key, and not at all when it has none). */
static char *read_line(char *str, int num, void *stream)
{
    struct parse *p = stream;
    char *r = fgets(str, num, p->f);
    if (!r)
        return r;
    p->line++;
    const char *s = str;
    while (*s == ' ' || *s == '\t')
        s++;
    const char *close = *s == '[' ? strchr(s, ']') : NULL;
    if (close) {
        section_without_keys(p);
        p->section_line = p->line;
        size_t n = (size_t)(close - s - 1);
        snprintf(p->section, sizeof p->section, "%.*s", (int)(n < sizeof p->section ? n : sizeof p->section - 1), s + 1);
        /* inih would merge a header repeated right after itself into one section. */
        if (p->cur && strcmp(p->cur->name, p->section) == 0)
            fail_at(p, p->line, "tenant [%s] appears twice (first at line %d)", p->section, p->cur->line);
    }
    return r;
}

static int hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void sha256(const char *s, uint8_t out[32])
{
    unsigned len = 32;
    EVP_Digest(s, strlen(s), out, &len, EVP_sha256(), NULL);
}

static int parse_uint(const char *v, unsigned lo, unsigned hi, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long x = strtoul(v, &end, 10);
    if (errno || end == v || *end || !isdigit((unsigned char)v[0]) || x < lo || x > hi)
        return -1;
    *out = (unsigned)x;
    return 0;
}

static int on_entry(void *user, const char *section, const char *name, const char *value)
{
    struct parse *p = user;
    if (p->failed)
        return 1;
    if (!section[0]) {
        fail_at(p, p->line, "'%s' is outside any [tenant] section", name);
        return 0;
    }
    if (!p->cur || strcmp(p->cur->name, section) != 0) {
        /* inih calls us with the section of each line; a new name opens a new tenant. */
        for (unsigned i = 0; i < p->ts->n; i++) {
            if (strcmp(p->ts->t[i].name, section) == 0) {
                fail_at(p, p->line, "tenant [%s] appears twice (first at line %d)", section, p->ts->t[i].line);
                return 0;
            }
        }
        for (const char *c = section; *c; c++) {
            if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-' && *c != '.') {
                fail_at(p, p->line, "tenant name [%s]: use letters, digits, '_', '-' and '.'", section);
                return 0;
            }
        }
        if (strlen(section) >= sizeof p->cur->name) {
            fail_at(p, p->line, "tenant name [%s] is longer than %zu characters", section,
                    sizeof p->cur->name - 1);
            return 0;
        }
        if (p->ts->n == VG_BOARD_TENANTS) {
            fail_at(p, p->line, "more than %d tenants", VG_BOARD_TENANTS);
            return 0;
        }
        p->cur = &p->ts->t[p->ts->n++];
        memset(p->cur, 0, sizeof *p->cur);
        snprintf(p->cur->name, sizeof p->cur->name, "%s", section);
        p->cur->weight = 1;
        p->cur->line = p->section_line;
    }
    struct vg_tenant_def *t = p->cur;
    if (!strcmp(name, "token")) {
        if (t->has_token) {
            fail_at(p, p->line, "[%s] has a second token", t->name);
            return 0;
        }
        if (strlen(value) < 8) {
            fail_at(p, p->line, "[%s] token is shorter than 8 characters", t->name);
            return 0;
        }
        sha256(value, t->token_sha256);
        t->has_token = 1;
    } else if (!strcmp(name, "token_sha256")) {
        if (t->has_token) {
            fail_at(p, p->line, "[%s] has a second token", t->name);
            return 0;
        }
        if (strlen(value) != 64) {
            fail_at(p, p->line, "[%s] token_sha256 must be 64 hex digits", t->name);
            return 0;
        }
        for (int i = 0; i < 32; i++) {
            int hi = hex_digit((unsigned char)value[2 * i]), lo = hex_digit((unsigned char)value[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                fail_at(p, p->line, "[%s] token_sha256 must be 64 hex digits", t->name);
                return 0;
            }
            t->token_sha256[i] = (uint8_t)(hi << 4 | lo);
        }
        t->has_token = 1;
    } else if (!strcmp(name, "weight")) {
        if (parse_uint(value, 1, 1000, &t->weight) < 0) {
            fail_at(p, p->line, "[%s] weight must be a whole number from 1 to 1000", t->name);
            return 0;
        }
    } else if (!strcmp(name, "limit")) {
        const char *v = value;
        char buf[32];
        size_t n = strlen(v);
        if (n && n < sizeof buf && v[n - 1] == '%') {
            memcpy(buf, v, n - 1);
            buf[n - 1] = 0;
            v = buf;
        }
        if (parse_uint(v, 1, 100, &t->cap_percent) < 0) {
            fail_at(p, p->line, "[%s] limit must be a percentage from 1 to 100", t->name);
            return 0;
        }
    } else if (!strcmp(name, "memory")) {
        if (vg_parse_size(value, &t->memory) < 0 || t->memory == 0) {
            fail_at(p, p->line, "[%s] memory must be a size such as 512M or 8G", t->name);
            return 0;
        }
    } else if (!strcmp(name, "devices")) {
        t->ndevices = 0;
        const char *s = value;
        while (*s) {
            char *end;
            errno = 0;
            long d = strtol(s, &end, 10);
            if (errno || end == s || d < 0 || d >= p->device_count || (*end && *end != ',')) {
                fail_at(p, p->line, "[%s] devices must list device numbers from 0 to %d, comma-separated",
                        t->name, p->device_count - 1);
                return 0;
            }
            for (int k = 0; k < t->ndevices; k++) {
                if (t->devices[k] == (int)d) {
                    fail_at(p, p->line, "[%s] devices lists %ld twice", t->name, d);
                    return 0;
                }
            }
            t->devices[t->ndevices++] = (int)d;
            s = *end ? end + 1 : end;
        }
        if (t->ndevices == 0) {
            fail_at(p, p->line, "[%s] devices is empty", t->name);
            return 0;
        }
    } else {
        fail_at(p, p->line, "[%s] unknown key '%s' (expected token, token_sha256, weight, limit, memory, "
                "devices)", t->name, name);
        return 0;
    }
    return 1;
}

int vg_tenants_load(const char *path, int device_count, struct vg_tenants *out, char *err, size_t errlen)
{
    struct parse p = {.ts = out, .device_count = device_count, .err = err, .errlen = errlen, .path = path};
    memset(out, 0, sizeof *out);
    out->from_file = 1;
    p.f = fopen(path, "r");
    if (!p.f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    int rc = ini_parse_stream(read_line, &p, on_entry, &p);
    fclose(p.f);
    section_without_keys(&p);
    if (rc > 0 && !p.failed)
        fail_at(&p, rc, "not a [tenant] line or a name = value line");
    if (rc < 0 && !p.failed)
        fail_at(&p, 0, "cannot read the file");
    if (p.failed)
        return -1;
    if (out->n == 0) {
        snprintf(err, errlen, "%s: no [tenant] section", path);
        return -1;
    }
    for (unsigned i = 0; i < out->n; i++) {
        if (!out->t[i].has_token) {
            snprintf(err, errlen, "%s:%d: [%s] has no token (token = ... or token_sha256 = ...)", path,
                     out->t[i].line, out->t[i].name);
            return -1;
        }
        for (unsigned k = 0; k < i; k++) {
            if (CRYPTO_memcmp(out->t[i].token_sha256, out->t[k].token_sha256, 32) == 0) {
                snprintf(err, errlen, "%s:%d: [%s] has the same token as [%s]", path, out->t[i].line,
                         out->t[i].name, out->t[k].name);
                return -1;
            }
        }
    }
    return 0;
}

void vg_tenants_default(struct vg_tenants *out)
{
    memset(out, 0, sizeof *out);
    out->n = 1;
    snprintf(out->t[0].name, sizeof out->t[0].name, "default");
    out->t[0].weight = 1;
}

int vg_tenants_match(const struct vg_tenants *ts, const char *token)
{
    if (!ts->from_file)
        return 0;
    uint8_t digest[32];
    sha256(token ? token : "", digest);
    int found = -1;
    for (unsigned i = 0; i < ts->n; i++) {
        int same = CRYPTO_memcmp(digest, ts->t[i].token_sha256, 32) == 0;
        found = same ? (int)i : found;
    }
    return found;
}

int vg_tenants_publish(const struct vg_tenants *ts, struct vg_board *b, int board_index[VG_BOARD_TENANTS])
{
    char seen[VG_BOARD_TENANTS] = {0};
    for (unsigned i = 0; i < ts->n; i++) {
        const struct vg_tenant_def *d = &ts->t[i];
        int idx = -1, free_idx = -1;
        for (int k = 0; k < VG_BOARD_TENANTS; k++) {
            struct vg_board_tenant *bt = &b->tenants[k];
            if (bt->state != VG_TENANT_FREE && strcmp(bt->name, d->name) == 0)
                idx = k;
            else if (bt->state == VG_TENANT_FREE && free_idx < 0)
                free_idx = k;
        }
        if (idx < 0)
            idx = free_idx;
        if (idx < 0)
            return -1;
        struct vg_board_tenant *bt = &b->tenants[idx];
        snprintf(bt->name, sizeof bt->name, "%s", d->name);
        __atomic_store_n(&bt->weight, d->weight, __ATOMIC_RELEASE);
        __atomic_store_n(&bt->cap_percent, d->cap_percent, __ATOMIC_RELEASE);
        __atomic_store_n(&bt->mem_limit, d->memory, __ATOMIC_RELEASE);
        __atomic_store_n(&bt->state, VG_TENANT_ACTIVE, __ATOMIC_RELEASE);
        board_index[i] = idx;
        seen[idx] = 1;
    }
    for (int k = 0; k < VG_BOARD_TENANTS; k++)
        if (!seen[k] && b->tenants[k].state == VG_TENANT_ACTIVE)
            __atomic_store_n(&b->tenants[k].state, VG_TENANT_REMOVED, __ATOMIC_RELEASE);
    return 0;
}

/* ptx_testlib: see ptx_testlib.h. */
#include "ptx_testlib.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TMEM_MAX 256
#define TMEM_BASE 0x7000000000ull /* far from host heap pointers: a host address is not valid */

struct tmem {
    ptx_memory iface;
    size_t n;
    uint64_t next;
    struct { uint64_t addr; size_t size; uint8_t *host; } a[TMEM_MAX];
};

/* translate: the whole range must lie in one allocation. Allocations are made before launches
 * and never during one, so no lock is needed here. */
static void *tmem_translate(void *ctx, uint64_t addr, size_t len)
{
    tmem *m = ctx;
    for (size_t i = 0; i < m->n; i++) {
        if (addr >= m->a[i].addr && addr - m->a[i].addr <= m->a[i].size &&
            len <= m->a[i].size - (addr - m->a[i].addr))
            return m->a[i].host + (addr - m->a[i].addr);
    }
    return NULL;
}

tmem *tmem_new(void)
{
    tmem *m = calloc(1, sizeof(*m));
    cr_assert(m);
    m->iface.ctx = m;
    m->iface.translate = tmem_translate;
    m->next = TMEM_BASE;
    return m;
}

void tmem_free(tmem *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        free(m->a[i].host);
    free(m);
}

uint64_t tmem_alloc(tmem *m, size_t size)
{
    cr_assert(m->n < TMEM_MAX);
    uint8_t *h = calloc(1, size ? size : 1);
    cr_assert(h);
    uint64_t addr = m->next;
    m->next += (size + 0xffff) & ~0xffffull;
    m->next += 0x10000; /* a gap, so that running off one allocation is not inside the next */
    m->a[m->n].addr = addr;
    m->a[m->n].size = size;
    m->a[m->n].host = h;
    m->n++;
    return addr;
}

void *tmem_host(tmem *m, uint64_t addr)
{
    void *p = tmem_translate(m, addr, 1);
    cr_assert(p, "no allocation at 0x%llx", (unsigned long long)addr);
    return p;
}

const ptx_memory *tmem_iface(tmem *m)
{
    return &m->iface;
}

char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    cr_assert(n >= 0);
    char *buf = malloc((size_t)n + 1);
    cr_assert(buf);
    cr_assert(fread(buf, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

ptx_module *load_ptx(const char *path)
{
    size_t len;
    char *text = read_file(path, &len);
    ptx_module *mod = NULL;
    char err[256];
    int rc = ptx_module_parse(text, len, &mod, err, sizeof(err));
    free(text);
    cr_assert_eq(rc, PTX_OK, "parse of %s failed: %s", path, err);
    return mod;
}

void tparams_init(tparams *p, const ptx_kernel *k)
{
    memset(p, 0, sizeof(*p));
    p->k = k;
    cr_assert(ptx_kernel_param_bytes(k) <= sizeof(p->buf));
}

void tparams_set(tparams *p, size_t i, const void *v, size_t size)
{
    size_t off, psize;
    cr_assert(i < ptx_kernel_param_count(p->k), "kernel has no parameter %zu", i);
    ptx_kernel_param(p->k, i, &off, &psize);
    cr_assert_eq(psize, size, "parameter %zu is %zu bytes, test passes %zu", i, psize, size);
    memcpy(p->buf + off, v, size);
}

int run1d(const ptx_kernel *k, tparams *p, tmem *m, unsigned grid, unsigned block,
          size_t dyn_shared, unsigned workers, char *err, size_t errlen)
{
    ptx_launch l;
    memset(&l, 0, sizeof(l));
    l.kernel = k;
    l.grid[0] = grid;
    l.grid[1] = l.grid[2] = 1;
    l.block[0] = block;
    l.block[1] = l.block[2] = 1;
    l.dynamic_shared = dyn_shared;
    l.params = p->buf;
    l.memory = tmem_iface(m);
    l.workers = workers;
    return ptx_launch_run(&l, err, errlen);
}

uint32_t trand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return (uint32_t)(x >> 16);
}

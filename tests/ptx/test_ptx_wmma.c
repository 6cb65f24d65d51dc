/* wmma (tests/ptx/kernels/wmma.cu and hand-written PTX): products compared bit for bit with a C
 * reference that sums in the order ptx_wmma.c states (k = 0..15 in f32 onto C), on random f16
 * inputs where the order matters; the documented fragment mapping (element e of lane l holds
 * row-major element (16 l + e) mod 256 of A, 8 l + e of C), whatever the memory layout and
 * stride; out-of-bounds fragments; malformed and unsupported wmma forms. Run on every engine
 * (the JIT leaves wmma kernels to the interpreter: the results must not differ). */
#include "ptx_testlib.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define WMMA_PTX PTX_KERNEL_DIR "/wmma.ptx"

/* IEEE binary16 <-> binary32, round to nearest even (what __float2half does). */
static float h2f(uint16_t h)
{
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023, u;
    if (e == 0) {
        float f = ldexpf((float)m, -24);
        return s ? -f : f;
    }
    u = e == 31 ? s | 0x7f800000u | (m << 13) : s | ((e + 112) << 23) | (m << 13);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint16_t f2h(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t s = (uint16_t)((u >> 16) & 0x8000);
    float a = fabsf(f);
    if (a != a)
        return s | 0x7e00;
    if (a >= 65520.0f)
        return s | 0x7c00;
    if (a < ldexpf(1.0f, -14)) { /* subnormal: multiples of 2^-24 */
        float q = nearbyintf(a * ldexpf(1.0f, 24));
        return s | (uint16_t)q;
    }
    int e;
    float m = frexpf(a, &e);             /* a = m 2^e, m in [0.5, 1) */
    float q = nearbyintf(ldexpf(m, 11)); /* 11 significant bits */
    if (q == 2048.0f) {
        q = 1024.0f;
        e++;
    }
    return s | (uint16_t)((e + 14) << 10) | (uint16_t)((uint32_t)q - 1024);
}

static ptx_module *mod;
static tmem *mem;

static void setup(void)
{
    mod = load_ptx(WMMA_PTX);
    mem = tmem_new();
}

static void teardown(void)
{
    ptx_module_free(mod);
    tmem_free(mem);
}

TestSuite(wmma, .init = setup, .fini = teardown);

static void run(const char *name, tparams *p, int expect)
{
    const ptx_kernel *k = ptx_module_find_kernel(mod, name);
    cr_assert(k, "no kernel %s", name);
    char err[256];
    int rc = run1d(k, p, mem, 1, 32, 0, 1, err, sizeof(err));
    cr_assert_eq(rc, expect, "%s: %d (%s)", name, rc, err);
}

static tparams params_for(const char *name)
{
    tparams p;
    tparams_init(&p, ptx_module_find_kernel(mod, name));
    return p;
}

/* Random f16 in (-2, 2) with full mantissas, so that the summation order shows in the bits. */
static uint16_t rand_half(uint64_t *st)
{
    return f2h(((float)(trand(st) % 2000001u) - 1000000.0f) / 500000.0f);
}

Test(wmma, f32_accumulation_order_is_the_reference_order)
{
    uint64_t st = 42;
    uint64_t a = tmem_alloc(mem, 512), b = tmem_alloc(mem, 512), c = tmem_alloc(mem, 1024),
             d = tmem_alloc(mem, 1024);
    uint16_t *ha = tmem_host(mem, a), *hb = tmem_host(mem, b);
    float *hc = tmem_host(mem, c), *hd = tmem_host(mem, d);
    for (int i = 0; i < 256; i++) {
        ha[i] = rand_half(&st);
        hb[i] = rand_half(&st);
        hc[i] = ((float)(trand(&st) % 2001u) - 1000.0f) / 7.0f;
    }
    tparams p = params_for("mma_f32");
    TP_SET(&p, 0, a);
    TP_SET(&p, 1, b);
    TP_SET(&p, 2, c);
    TP_SET(&p, 3, d);
    run("mma_f32", &p, PTX_OK);
    int order_matters = 0;
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            float acc = hc[i * 16 + j], rev = hc[i * 16 + j];
            for (int k = 0; k < 16; k++)
                acc += h2f(ha[i * 16 + k]) * h2f(hb[j * 16 + k]); /* B column-major */
            for (int k = 15; k >= 0; k--)
                rev += h2f(ha[i * 16 + k]) * h2f(hb[j * 16 + k]);
            order_matters |= acc != rev;
            cr_expect_eq(hd[i * 16 + j], acc, "(%d,%d): %.9g, want %.9g", i, j, hd[i * 16 + j], acc);
        }
    cr_expect(order_matters, "the inputs do not tell summation orders apart");
}

Test(wmma, f16_accumulators_round_once_at_the_end)
{
    uint64_t st = 7;
    uint64_t a = tmem_alloc(mem, 512), b = tmem_alloc(mem, 512), c = tmem_alloc(mem, 512),
             d = tmem_alloc(mem, 512);
    uint16_t *ha = tmem_host(mem, a), *hb = tmem_host(mem, b), *hc = tmem_host(mem, c),
             *hd = tmem_host(mem, d);
    for (int i = 0; i < 256; i++) {
        ha[i] = rand_half(&st);
        hb[i] = rand_half(&st);
        hc[i] = rand_half(&st);
    }
    tparams p = params_for("mma_f16");
    TP_SET(&p, 0, a);
    TP_SET(&p, 1, b);
    TP_SET(&p, 2, c);
    TP_SET(&p, 3, d);
    run("mma_f16", &p, PTX_OK);
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            float acc = h2f(hc[i * 16 + j]);
            for (int k = 0; k < 16; k++)
                acc += h2f(ha[i * 16 + k]) * h2f(hb[j * 16 + k]);
            cr_expect_eq(hd[i * 16 + j], f2h(acc), "(%d,%d): %04x, want %04x", i, j, hd[i * 16 + j], f2h(acc));
        }
}

/* A's fragment: element e of lane l is row-major element (16 l + e) mod 256 of the matrix,
 * whether it was loaded from a row- or a column-major layout, with any leading dimension. */
Test(wmma, fragment_mapping_of_a)
{
    const int ld = 24;
    uint64_t a = tmem_alloc(mem, 2 * 16 * ld), out = tmem_alloc(mem, 2 * 512);
    uint16_t *ha = tmem_host(mem, a), *ho = tmem_host(mem, out);
    for (int layout = 0; layout < 2; layout++) {
        for (int r = 0; r < 16; r++)
            for (int col = 0; col < 16; col++) /* value r * 16 + col, exact in f16 */
                ha[layout ? col * ld + r : r * ld + col] = f2h((float)(r * 16 + col));
        const char *name = layout ? "dump_a_col" : "dump_a_row";
        tparams p = params_for(name);
        TP_SET(&p, 0, a);
        TP_SET(&p, 1, ld);
        TP_SET(&p, 2, out);
        run(name, &p, PTX_OK);
        for (int l = 0; l < 32; l++)
            for (int e = 0; e < 16; e++)
                cr_expect_eq(h2f(ho[l * 16 + e]), (float)((l * 16 + e) % 256), "%s lane %d element %d: %g",
                             name, l, e, h2f(ho[l * 16 + e]));
    }
}

Test(wmma, fragment_mapping_of_c)
{
    uint64_t c = tmem_alloc(mem, 1024), out = tmem_alloc(mem, 1024);
    float *hc = tmem_host(mem, c), *ho = tmem_host(mem, out);
    for (int i = 0; i < 256; i++)
        hc[i] = (float)i;
    tparams p = params_for("dump_c");
    TP_SET(&p, 0, c);
    TP_SET(&p, 1, out);
    run("dump_c", &p, PTX_OK);
    for (int i = 0; i < 256; i++)
        cr_expect_eq(ho[i], (float)i, "lane %d element %d: %g", i / 8, i % 8, ho[i]);
}

Test(wmma, fragments_out_of_bounds_fail_the_launch)
{
    uint64_t a = tmem_alloc(mem, 512 - 2), b = tmem_alloc(mem, 512), c = tmem_alloc(mem, 1024),
             d = tmem_alloc(mem, 1024);
    tparams p = params_for("mma_f32");
    TP_SET(&p, 0, a); /* A's last element lies past its allocation */
    TP_SET(&p, 1, b);
    TP_SET(&p, 2, c);
    TP_SET(&p, 3, d);
    run("mma_f32", &p, PTX_ERR_ILLEGAL_ADDRESS);
}

static int parse(const char *body, ptx_module **m, char *err)
{
    char text[2048];
    snprintf(text, sizeof(text),
             ".version 8.0\n.target sm_75\n.address_size 64\n"
             ".visible .entry k(.param .u64 p)\n{ .reg .b32 %%r<20>; .reg .b64 %%rd<3>;\n"
             "  ld.param.u64 %%rd1, [p];\n  %s\n  ret;\n}\n", body);
    *m = NULL;
    return ptx_module_parse(text, strlen(text), m, err, 256);
}

Test(wmma, malformed_forms_fail_the_parse)
{
    static const char *const bad[] = {
        /* seven registers where eight are expected */
        "wmma.load.a.sync.aligned.row.m16n16k16.global.f16 {%r1,%r2,%r3,%r4,%r5,%r6,%r7}, [%rd1], 16;",
        /* no layout */
        "wmma.load.a.sync.aligned.m16n16k16.global.f16 {%r1,%r2,%r3,%r4,%r5,%r6,%r7,%r8}, [%rd1];",
        /* a 64-bit register in a fragment */
        "wmma.load.c.sync.aligned.row.m16n16k16.f16 {%r1,%r2,%r3,%rd2}, [%rd1];",
        /* no address */
        "wmma.store.d.sync.aligned.row.m16n16k16.f32 %rd1, {%r1,%r2,%r3,%r4,%r5,%r6,%r7,%r8};",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ptx_module *m;
        char err[256];
        cr_expect_eq(parse(bad[i], &m, err), PTX_ERR_PARSE, "accepted: %s", bad[i]);
        ptx_module_free(m);
    }
}

Test(wmma, other_wmma_forms_refuse_their_kernel_only)
{
    static const char *const later[] = {
        "wmma.load.a.sync.aligned.row.m8n8k32.s4 {%r1}, [%rd1], 32;",
        "wmma.load.a.sync.aligned.row.m16n16k16.bf16 {%r1,%r2,%r3,%r4}, [%rd1], 16;",
    };
    for (size_t i = 0; i < sizeof(later) / sizeof(later[0]); i++) {
        ptx_module *m;
        char err[256];
        cr_assert_eq(parse(later[i], &m, err), PTX_OK, "%s: %s", later[i], err);
        const char *why = ptx_kernel_unsupported(ptx_module_find_kernel(m, "k"));
        cr_expect(why && strstr(why, "wmma"), "%s: %s", later[i], why ? why : "(runs)");
        ptx_module_free(m);
    }
}

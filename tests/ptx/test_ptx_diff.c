/* Differential tests of the two engines: the JIT must give exactly what the interpreter gives.
 *
 * - Random PTX programs: arithmetic on 32- and 64-bit integers and f32, divergent branches and
 *   loops with lane-dependent trip counts, shared memory between barriers, shuffles of every
 *   mode (inside divergent code too), atomics whose final state does not depend on their order.
 *   16 of them (each compile costs about half a second, once: the JIT's disk cache keeps them);
 *   VGPU_DIFF_PROGRAMS=N runs N.
 * - Every kernel of the PTX test kernels, the kernel corpus, the emulated driver's tests and the
 *   remote suites, with random buffers and scalars for parameters.
 * Each runs on both engines from the same initial memory; the status, the final memory, the device
 * printf output and the count of lane-instructions executed must be equal (floats bit for bit, except that any NaN
 * equals any NaN: LLVM folds constant operands with its own NaN). */
#include "ptx_testlib.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void require_jit(void)
{
    if (!ptx_engine_available(PTX_ENGINE_JIT))
        cr_skip_test("this build has no JIT (LLVM 14 not found)");
}

/* ---- comparing runs ----------------------------------------------------------------------------- */

typedef struct run_result {
    int status;
    uint64_t lanes;
    uint8_t *mem[8];
    size_t size[8];
    char *printed; /* device printf output, in order (one worker) */
    size_t printed_len;
} run_result;

/* Device printf output of the run in progress: the engines call print from their worker. */
static pthread_mutex_t printed_lock = PTHREAD_MUTEX_INITIALIZER;
static char *printed;
static size_t printed_len;

static void capture_print(void *ctx, const char *text, size_t len)
{
    (void)ctx;
    pthread_mutex_lock(&printed_lock);
    char *grown = realloc(printed, printed_len + len + 1);
    if (grown) {
        memcpy(grown + printed_len, text, len);
        printed = grown;
        printed_len += len;
    }
    pthread_mutex_unlock(&printed_lock);
}

/* Equal words, or two NaNs (as f32 words). */
static int same_word(uint32_t a, uint32_t b)
{
    if (a == b)
        return 1;
    return (a & 0x7f800000u) == 0x7f800000u && (a & 0x7fffffu) && (b & 0x7f800000u) == 0x7f800000u &&
           (b & 0x7fffffu);
}

static void compare(const char *what, const run_result *x, const run_result *y, size_t nbuf)
{
    cr_assert_eq(x->status, y->status, "%s: interpreter status %d, JIT %d", what, x->status, y->status);
    if (x->status == PTX_OK)
        cr_assert_eq(x->lanes, y->lanes, "%s: %llu lane-instructions interpreted, %llu compiled", what,
                     (unsigned long long)x->lanes, (unsigned long long)y->lanes);
    for (size_t b = 0; b < nbuf; b++) {
        for (size_t i = 0; i + 4 <= x->size[b]; i += 4) {
            uint32_t u, v;
            memcpy(&u, x->mem[b] + i, 4);
            memcpy(&v, y->mem[b] + i, 4);
            cr_assert(same_word(u, v), "%s: buffer %zu word %zu: interpreter 0x%08x, JIT 0x%08x", what, b, i / 4,
                      u, v);
        }
    }
    cr_assert(x->printed_len == y->printed_len && (!x->printed_len || !memcmp(x->printed, y->printed, x->printed_len)),
              "%s: the engines printed differently (%zu bytes interpreted, %zu compiled)", what, x->printed_len,
              y->printed_len);
}

/* Runs k on one engine with buffers initialized from init[] (nbuf of them, sizes size[]), the
 * parameter buffer built by set_params (pointers to the buffers), and saves the outcome. */
typedef void (*param_fn)(tparams *p, const ptx_kernel *k, const uint64_t *addr, void *arg);

static void run_engine(ptx_module *mod, const ptx_kernel *k, int engine, unsigned grid, unsigned block, uint8_t *const *init,
                       const size_t *size, size_t nbuf, param_fn set_params, void *arg, run_result *out)
{
    tmem *mem = tmem_new();
    /* The module's globals: fresh device memory for this run, with their initializers. */
    for (size_t i = 0; i < ptx_module_global_count(mod); i++) {
        ptx_global_info gi;
        ptx_module_global(mod, i, &gi);
        uint64_t a = tmem_alloc(mem, gi.size ? gi.size : 1);
        if (gi.init)
            memcpy(tmem_host(mem, a), gi.init, gi.size);
        ptx_module_bind_global(mod, i, a);
    }
    uint64_t addr[8];
    for (size_t b = 0; b < nbuf; b++) {
        addr[b] = tmem_alloc(mem, size[b]);
        memcpy(tmem_host(mem, addr[b]), init[b], size[b]);
    }
    tparams p;
    tparams_init(&p, k);
    set_params(&p, k, addr, arg);
    ptx_launch l;
    memset(&l, 0, sizeof(l));
    l.kernel = k;
    l.grid[0] = grid;
    l.grid[1] = l.grid[2] = 1;
    l.block[0] = block;
    l.block[1] = l.block[2] = 1;
    l.params = p.buf;
    ptx_memory iface = *tmem_iface(mem);
    iface.print = capture_print;
    l.memory = &iface;
    l.workers = 1;
    l.engine = engine;
    char err[256];
    out->status = ptx_launch_run(&l, err, sizeof(err));
    out->lanes = l.lane_instructions;
    pthread_mutex_lock(&printed_lock);
    out->printed = printed;
    out->printed_len = printed_len;
    printed = NULL;
    printed_len = 0;
    pthread_mutex_unlock(&printed_lock);
    for (size_t b = 0; b < nbuf; b++) {
        out->size[b] = size[b];
        out->mem[b] = malloc(size[b]);
        cr_assert(out->mem[b]);
        memcpy(out->mem[b], tmem_host(mem, addr[b]), size[b]);
    }
    tmem_free(mem);
}

static void free_result(run_result *r, size_t nbuf)
{
    for (size_t b = 0; b < nbuf; b++)
        free(r->mem[b]);
    free(r->printed);
}

static void diff_kernel(const char *what, ptx_module *mod, const ptx_kernel *k, unsigned grid, unsigned block, uint8_t *const *init,
                        const size_t *size, size_t nbuf, param_fn set_params, void *arg)
{
    double ms;
    int from_disk;
    cr_assert_eq(ptx_kernel_jit_prepare(k, &ms, &from_disk), PTX_OK, "%s: the JIT did not compile it", what);
    run_result a, b;
    run_engine(mod, k, PTX_ENGINE_INTERP, grid, block, init, size, nbuf, set_params, arg, &a);
    run_engine(mod, k, PTX_ENGINE_JIT, grid, block, init, size, nbuf, set_params, arg, &b);
    compare(what, &a, &b, nbuf);
    free_result(&a, nbuf);
    free_result(&b, nbuf);
}

/* ---- random programs ---------------------------------------------------------------------------- */

typedef struct gen {
    char *buf;
    size_t len, cap;
    uint64_t rng;
    int labels;
    int loop_depth;
} gen;

static void emit(gen *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(gen *g, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(g->buf + g->len, g->cap - g->len, fmt, ap);
        va_end(ap);
        cr_assert(n >= 0);
        if (g->len + (size_t)n < g->cap) {
            g->len += (size_t)n;
            return;
        }
        g->cap = g->cap * 2 + (size_t)n;
        g->buf = realloc(g->buf, g->cap);
        cr_assert(g->buf);
    }
}

static unsigned rnd(gen *g, unsigned n)
{
    return trand(&g->rng) % n;
}

#define NR 12 /* %r0..%r11 data; %r12 tid; %r13..%r15 loop counters; %r16.. scratch */
#define NF 8
#define ND 4
#define NP 4

static void gen_int(gen *g)
{
    static const char *const bin[] = {"add.s32", "sub.s32", "mul.lo.s32", "mul.hi.s32", "mul.hi.u32", "and.b32",
                                      "or.b32", "xor.b32", "min.s32", "max.s32", "min.u32", "max.u32", "shl.b32",
                                      "shr.u32", "shr.s32", "div.u32", "rem.s32"};
    static const char *const un[] = {"not.b32", "neg.s32", "popc.b32", "clz.b32", "brev.b32", "abs.s32"};
    int d = (int)rnd(g, NR), a = (int)rnd(g, NR), b = (int)rnd(g, NR);
    switch (rnd(g, 5)) {
    case 0:
        emit(g, "\t%s %%r%d, %%r%d;\n", un[rnd(g, 6)], d, a);
        break;
    case 1:
        emit(g, "\t%s %%r%d, %%r%d, %d;\n", bin[rnd(g, 15)], d, a, (int)rnd(g, 40) - 8);
        break;
    case 2:
        emit(g, "\tmad.lo.s32 %%r%d, %%r%d, %%r%d, %%r%d;\n", d, a, b, (int)rnd(g, NR));
        break;
    case 3:
        emit(g, "\tselp.b32 %%r%d, %%r%d, %%r%d, %%p%u;\n", d, a, b, rnd(g, NP));
        break;
    default:
        emit(g, "\t%s %%r%d, %%r%d, %%r%d;\n", bin[rnd(g, 17)], d, a, b);
        break;
    }
}

static void gen_float(gen *g)
{
    static const char *const bin[] = {"add.f32", "sub.f32", "mul.f32", "min.f32", "max.f32", "div.rn.f32",
                                      "add.ftz.f32", "mul.ftz.f32"};
    static const char *const un[] = {"neg.f32", "abs.f32", "sqrt.rn.f32", "rcp.rn.f32", "rsqrt.approx.f32",
                                     "ex2.approx.ftz.f32", "lg2.approx.f32", "sin.approx.f32", "cos.approx.f32"};
    int d = (int)rnd(g, NF), a = (int)rnd(g, NF), b = (int)rnd(g, NF), c = (int)rnd(g, NF);
    switch (rnd(g, 6)) {
    case 0:
        emit(g, "\t%s %%f%d, %%f%d;\n", un[rnd(g, 9)], d, a);
        break;
    case 1:
        emit(g, "\tfma.rn.f32 %%f%d, %%f%d, %%f%d, %%f%d;\n", d, a, b, c);
        break;
    case 2:
        emit(g, "\tcvt.rn.f32.s32 %%f%d, %%r%u;\n", d, rnd(g, NR));
        break;
    case 3:
        emit(g, "\tcvt.%s.s32.f32 %%r%u, %%f%d;\n", rnd(g, 2) ? "rzi" : "rni", rnd(g, NR), a);
        break;
    case 4:
        emit(g, "\t%s %%f%d, %%f%d, 0f%08X;\n", bin[rnd(g, 8)], d, a, (unsigned)(0x3f000000u + rnd(g, 0x1000000)));
        break;
    default:
        emit(g, "\t%s %%f%d, %%f%d, %%f%d;\n", bin[rnd(g, 8)], d, a, b);
        break;
    }
}

static void gen_wide(gen *g)
{
    int d = (int)rnd(g, ND), a = (int)rnd(g, ND);
    switch (rnd(g, 4)) {
    case 0:
        emit(g, "\tmul.wide.s32 %%rd%d, %%r%u, %%r%u;\n", d, rnd(g, NR), rnd(g, NR));
        break;
    case 1:
        emit(g, "\tadd.s64 %%rd%d, %%rd%d, %%rd%u;\n", d, a, rnd(g, ND));
        break;
    case 2:
        emit(g, "\tshr.u64 %%rd%d, %%rd%d, %u;\n", d, a, rnd(g, 70));
        break;
    default:
        emit(g, "\tcvt.u32.u64 %%r%u, %%rd%d;\n", rnd(g, NR), a);
        break;
    }
}

static void gen_setp(gen *g)
{
    static const char *const icmp[] = {"lt.s32", "le.u32", "eq.s32", "ne.s32", "gt.u32", "ge.s32", "hi.u32"};
    static const char *const fcmp[] = {"lt.f32", "ge.f32", "neu.f32", "equ.f32", "gtu.f32", "nan.f32", "num.f32"};
    if (rnd(g, 2))
        emit(g, "\tsetp.%s %%p%u, %%r%u, %%r%u;\n", icmp[rnd(g, 7)], rnd(g, NP), rnd(g, NR), rnd(g, NR));
    else
        emit(g, "\tsetp.%s %%p%u, %%f%u, %%f%u;\n", fcmp[rnd(g, 7)], rnd(g, NP), rnd(g, NF), rnd(g, NF));
}

static void gen_shfl(gen *g)
{
    static const char *const mode[] = {"up", "down", "bfly", "idx"};
    unsigned m = rnd(g, 4);
    emit(g, "\tshfl.sync.%s.b32 %%r%u|%%p%u, %%r%u, %u, %u, -1;\n", mode[m], rnd(g, NR), rnd(g, NP), rnd(g, NR),
         rnd(g, 32), m == 0 ? 0u : 31u);
}

static void gen_block(gen *g, int depth, int n);

/* One statement; barriers only outside divergent code (depth 0). */
static void gen_stmt(gen *g, int depth)
{
    unsigned kind = rnd(g, depth < 2 ? 14 : 10);
    if (kind < 4) {
        gen_int(g);
    } else if (kind < 7) {
        gen_float(g);
    } else if (kind == 7) {
        gen_wide(g);
    } else if (kind == 8) {
        gen_setp(g);
    } else if (kind == 9) {
        if (rnd(g, 2))
            gen_shfl(g);
        else /* atomics whose final memory does not depend on their order */
            emit(g, "\tred.global.%s [%%rd10+%u], %%r%u;\n", rnd(g, 2) ? "add.u32" : rnd(g, 2) ? "max.s32" : "xor.b32",
                 4 * rnd(g, 16), rnd(g, NR));
    } else if (kind < 12) {
        /* if / else on a lane-dependent condition */
        int l = g->labels++;
        gen_setp(g);
        emit(g, "\t@%%p%u bra ELSE%d;\n", rnd(g, NP), l);
        gen_block(g, depth + 1, 1 + (int)rnd(g, 4));
        emit(g, "\tbra.uni END%d;\nELSE%d:\n", l, l);
        gen_block(g, depth + 1, 1 + (int)rnd(g, 4));
        emit(g, "END%d:\n", l);
    } else if (kind == 12 && g->loop_depth < 3) {
        /* a loop of 1..4 iterations per lane */
        int l = g->labels++, cnt = 13 + g->loop_depth;
        emit(g, "\tand.b32 %%r%d, %%r%u, 3;\n\tadd.s32 %%r%d, %%r%d, 1;\nLOOP%d:\n", cnt, rnd(g, NR), cnt, cnt, l);
        g->loop_depth++;
        gen_block(g, depth + 1, 1 + (int)rnd(g, 4));
        g->loop_depth--;
        emit(g, "\tsub.s32 %%r%d, %%r%d, 1;\n\tsetp.gt.s32 %%p7, %%r%d, 0;\n\t@%%p7 bra LOOP%d;\n", cnt, cnt, cnt, l);
    } else if (depth == 0) {
        /* shared memory: each lane writes a word, all read another one after a barrier */
        emit(g, "\tbar.sync 0;\n\tmul.lo.s32 %%r16, %%r12, %u;\n\tand.b32 %%r16, %%r16, 255;\n"
                "\tshl.b32 %%r16, %%r16, 2;\n\tmov.u32 %%r17, sh;\n\tadd.s32 %%r16, %%r16, %%r17;\n"
                "\tst.shared.u32 [%%r16], %%r%u;\n\tbar.sync 0;\n"
                "\tadd.s32 %%r18, %%r12, %u;\n\tand.b32 %%r18, %%r18, 255;\n\tshl.b32 %%r18, %%r18, 2;\n"
                "\tadd.s32 %%r18, %%r18, %%r17;\n\tld.shared.u32 %%r%u, [%%r18];\n"
                "\tatom.shared.add.u32 %%r19, [%%r17+1024], %%r%u;\n",
             1 + 2 * rnd(g, 8), rnd(g, NR), rnd(g, 64), rnd(g, NR), rnd(g, NR));
    } else {
        gen_int(g);
    }
}

static void gen_block(gen *g, int depth, int n)
{
    for (int i = 0; i < n; i++)
        gen_stmt(g, depth);
}

/* A kernel: each thread loads its registers from in, runs the random body, stores them to out. */
static char *gen_program(uint64_t seed)
{
    gen g = {NULL, 0, 0, seed * 0x9e3779b97f4a7c15ull + 1, 0, 0};
    g.cap = 1 << 14;
    g.buf = malloc(g.cap);
    cr_assert(g.buf);
    emit(&g, ".version 7.5\n.target sm_75\n.address_size 64\n"
             ".visible .entry rnd(.param .u64 out, .param .u64 in, .param .u64 gl)\n{\n"
             "\t.reg .b32 %%r<24>;\n\t.reg .f32 %%f<%d>;\n\t.reg .b64 %%rd<16>;\n\t.reg .pred %%p<8>;\n"
             "\t.shared .align 4 .b8 sh[1028];\n"
             "\tld.param.u64 %%rd8, [out];\n\tld.param.u64 %%rd9, [in];\n\tld.param.u64 %%rd10, [gl];\n"
             "\tmov.u32 %%r12, %%tid.x;\n\tmul.wide.u32 %%rd11, %%r12, 128;\n"
             "\tadd.s64 %%rd12, %%rd9, %%rd11;\n\tadd.s64 %%rd13, %%rd8, %%rd11;\n", NF);
    for (int i = 0; i < NR; i++)
        emit(&g, "\tld.global.u32 %%r%d, [%%rd12+%d];\n", i, 4 * i);
    for (int i = 0; i < NF; i++)
        emit(&g, "\tld.global.f32 %%f%d, [%%rd12+%d];\n", i, 48 + 4 * i);
    for (int i = 0; i < ND; i++)
        emit(&g, "\tld.global.u64 %%rd%d, [%%rd12+%d];\n", i, 80 + 8 * i);
    for (int i = 0; i < NP; i++)
        emit(&g, "\tsetp.lt.u32 %%p%d, %%r%d, %%r%d;\n", i, i, i + 4);
    gen_block(&g, 0, 8 + (int)rnd(&g, 20));
    for (int i = 0; i < NR; i++)
        emit(&g, "\tst.global.u32 [%%rd13+%d], %%r%d;\n", 4 * i, i);
    for (int i = 0; i < NF; i++)
        emit(&g, "\tst.global.f32 [%%rd13+%d], %%f%d;\n", 48 + 4 * i, i);
    for (int i = 0; i < ND; i++)
        emit(&g, "\tst.global.u64 [%%rd13+%d], %%rd%d;\n", 80 + 8 * i, i);
    for (int i = 0; i < NP; i++)
        emit(&g, "\tselp.u32 %%r20, 1, 0, %%p%d;\n\tst.global.u32 [%%rd13+%d], %%r20;\n", i, 112 + 4 * i);
    emit(&g, "\tret;\n}\n");
    return g.buf;
}

static void rnd_params(tparams *p, const ptx_kernel *k, const uint64_t *addr, void *arg)
{
    (void)k, (void)arg;
    for (size_t i = 0; i < 3; i++)
        tparams_set(p, i, &addr[i], 8);
}

static void fill_random(uint8_t *b, size_t n, uint64_t *s)
{
    for (size_t i = 0; i < n; i += 4) {
        uint32_t v = trand(s);
        /* Some words are small integers or ordinary floats, where the interesting cases are. */
        switch (v % 4) {
        case 0: v = v >> 24; break;
        case 1: v = 0x3f000000u + (v & 0x01ffffffu); break;
        case 2: v = 0xbf000000u + (v & 0x01ffffffu); break;
        default: break;
        }
        memcpy(b + i, &v, 4 < n - i ? 4 : n - i);
    }
}

Test(diff, random_programs, .timeout = 600)
{
    require_jit();
    int programs = getenv("VGPU_DIFF_PROGRAMS") ? atoi(getenv("VGPU_DIFF_PROGRAMS")) : 16;
    for (int seed = 1; seed <= programs; seed++) {
        char *text = gen_program((uint64_t)seed);
        ptx_module *m = NULL;
        char err[256];
        int rc = ptx_module_parse(text, strlen(text), &m, err, sizeof(err));
        cr_assert_eq(rc, PTX_OK, "program %d does not parse: %s\n%s", seed, err, text);
        const ptx_kernel *k = ptx_module_find_kernel(m, "rnd");
        uint64_t s = (uint64_t)seed * 77 + 5;
        unsigned block = 32u * (1 + (unsigned)seed % 4) - (seed % 3 == 0 ? 7u : 0u); /* partial warps too */
        size_t size[3] = {(size_t)block * 128, (size_t)block * 128, 64};
        uint8_t *init[3];
        for (int b = 0; b < 3; b++) {
            init[b] = malloc(size[b]);
            fill_random(init[b], size[b], &s);
        }
        char what[64];
        snprintf(what, sizeof(what), "random program %d", seed);
        diff_kernel(what, m, k, 2, block, init, size, 3, rnd_params, NULL);
        for (int b = 0; b < 3; b++)
            free(init[b]);
        ptx_module_free(m);
        free(text);
    }
}

/* ---- every kernel of the test corpora ------------------------------------------------------------ */

#define CORPUS_BUF (256u << 10)

typedef struct corpus_args {
    size_t nbuf;
} corpus_args;

/* 8-byte parameters point to a buffer each; 4-byte ones are 64 (sizes, counts); other sizes
 * (structures) get the words of buffer 0's start. */
static void corpus_params(tparams *p, const ptx_kernel *k, const uint64_t *addr, void *arg)
{
    corpus_args *ca = arg;
    size_t next = 0;
    for (size_t i = 0; i < ptx_kernel_param_count(k); i++) {
        size_t off, size;
        ptx_kernel_param(k, i, &off, &size);
        if (size == 8 && next < ca->nbuf) {
            tparams_set(p, i, &addr[next++], 8);
        } else if (size == 4) {
            uint32_t v = 64;
            tparams_set(p, i, &v, 4);
        } else if (size <= 64) {
            uint8_t v[64];
            for (size_t j = 0; j < size; j++)
                v[j] = (uint8_t)(j * 13 + 1);
            tparams_set(p, i, v, size);
        }
    }
}

/* Kernels that never end by design (the hostile suite's runaway kernel): their engines meet in
 * tests/remote/test_hostile.c, which stops them. */
static int endless(const char *path, const char *kernel)
{
    return strstr(path, "hostile_kernels") && strcmp(kernel, "spin") == 0;
}

static int diff_file(const char *path)
{
    size_t len;
    char *text = read_file(path, &len);
    ptx_module *m = NULL;
    char err[256];
    cr_assert_eq(ptx_module_parse(text, len, &m, err, sizeof(err)), PTX_OK, "%s: %s", path, err);
    free(text);
    /* Globals of the module get device memory too (zeroed or initialized). */
    int n = 0;
    for (size_t i = 0; i < ptx_module_kernel_count(m); i++) {
        const ptx_kernel *k = ptx_module_kernel_at(m, i);
        if (ptx_kernel_unsupported(k) || endless(path, ptx_kernel_name(k)))
            continue;
        size_t nbuf = 0;
        for (size_t j = 0; j < ptx_kernel_param_count(k); j++) {
            size_t off, size;
            ptx_kernel_param(k, j, &off, &size);
            nbuf += size == 8;
        }
        if (nbuf > 8)
            continue;
        uint8_t *init[8];
        size_t size[8];
        uint64_t s = 0x5eed + i;
        for (size_t b = 0; b < nbuf; b++) {
            size[b] = CORPUS_BUF;
            init[b] = malloc(size[b]);
            fill_random(init[b], size[b], &s);
        }
        unsigned block = ptx_kernel_max_threads(k) < 128 ? ptx_kernel_max_threads(k) : 128;
        corpus_args ca = {nbuf};
        char what[1200];
        snprintf(what, sizeof(what), "%s: %s", path, ptx_kernel_name(k));
        diff_kernel(what, m, k, 3, block, init, size, nbuf, corpus_params, &ca);
        for (size_t b = 0; b < nbuf; b++)
            free(init[b]);
        n++;
    }
    ptx_module_free(m);
    return n;
}

static int diff_dir(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert(d, "cannot open %s", dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".ptx") != 0)
            continue;
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        n += diff_file(path);
    }
    closedir(d);
    return n;
}

Test(diff, test_and_corpus_kernels, .timeout = 600)
{
    require_jit();
    int n = diff_dir(PTX_KERNEL_DIR);
#ifdef CORPUS_PTX_DIR
    n += diff_dir(CORPUS_PTX_DIR);
#endif
#ifdef EMU_PTX
    n += diff_file(EMU_PTX);
#endif
#ifdef REMOTE_PTX_DIR
    n += diff_dir(REMOTE_PTX_DIR);
#endif
    cr_assert_gt(n, 20, "only %d kernels compared", n);
}

/* Calls through pointers, function and variable addresses in initializers, device malloc/free
 * and %envreg, on hand-written PTX (nvcc's forms): lanes of a warp calling different functions
 * and reconverging, recursion through a pointer and pointers to no function failing the launch,
 * a heap reached through ptx_memory's callbacks, the launch's environment registers. Run on
 * every engine (tests/ptx.cmake). */
#include "ptx_testlib.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static ptx_module *parse_text(const char *text)
{
    ptx_module *m = NULL;
    char err[256];
    int rc = ptx_module_parse(text, strlen(text), &m, err, sizeof(err));
    cr_assert_eq(rc, PTX_OK, "parse failed: %s", err);
    return m;
}

/* Allocates, initialises and relocates the module's variables, as the driver does. */
static void bind_all(ptx_module *m, tmem *mem, uint64_t *addr)
{
    size_t n = ptx_module_global_count(m);
    for (size_t i = 0; i < n; i++) {
        ptx_global_info g;
        ptx_module_global(m, i, &g);
        addr[i] = tmem_alloc(mem, g.size ? g.size : 1);
        ptx_module_bind_global(m, i, addr[i]);
    }
    for (size_t i = 0; i < n; i++) {
        ptx_global_info g;
        ptx_module_global(m, i, &g);
        if (g.init) {
            memcpy(tmem_host(mem, addr[i]), g.init, g.size);
            ptx_module_global_relocate(m, i, tmem_host(mem, addr[i]));
        }
    }
}

/* One block of 32 threads on one worker, with the given memory and environment registers. */
static int launch32(const ptx_kernel *k, const tparams *p, const ptx_memory *mem, const uint32_t *envreg,
                    char *err)
{
    ptx_launch l;
    memset(&l, 0, sizeof(l));
    l.kernel = k;
    l.grid[0] = l.grid[1] = l.grid[2] = 1;
    l.block[0] = 32;
    l.block[1] = l.block[2] = 1;
    l.params = p->buf;
    l.memory = mem;
    l.workers = 1;
    if (envreg)
        memcpy(l.envreg, envreg, sizeof(l.envreg));
    return ptx_launch_run(&l, err, 256);
}

/* Three functions in a table (an initializer of function addresses, as a vtable is), a fourth
 * whose address is taken in code; each lane calls table[tid % 4] (slot 3: the fourth) and then
 * records which lanes run together again (activemask). */
static const char *const table_ptx =
    ".version 8.0\n.target sm_75\n.address_size 64\n"
    ".func (.param .b32 r) f_add(.param .b32 a, .param .b32 b);\n"
    ".func (.param .b32 r) f_mul(.param .b32 a, .param .b32 b);\n"
    ".func (.param .b32 r) f_sub(.param .b32 a, .param .b32 b);\n"
    ".func (.param .b32 r) f_max(.param .b32 a, .param .b32 b);\n"
    ".global .align 8 .u64 table[4] = {f_add, f_mul, f_sub, 0};\n"
    ".func (.param .b32 r) f_add(.param .b32 a, .param .b32 b)\n{ .reg .b32 %r<4>;\n"
    "  ld.param.b32 %r1, [a]; ld.param.b32 %r2, [b]; add.s32 %r3, %r1, %r2; st.param.b32 [r], %r3; ret; }\n"
    ".func (.param .b32 r) f_mul(.param .b32 a, .param .b32 b)\n{ .reg .b32 %r<4>;\n"
    "  ld.param.b32 %r1, [a]; ld.param.b32 %r2, [b]; mul.lo.s32 %r3, %r1, %r2; st.param.b32 [r], %r3; ret; }\n"
    ".func (.param .b32 r) f_sub(.param .b32 a, .param .b32 b)\n{ .reg .b32 %r<4>;\n"
    "  ld.param.b32 %r1, [a]; ld.param.b32 %r2, [b]; sub.s32 %r3, %r1, %r2; st.param.b32 [r], %r3; ret; }\n"
    ".func (.param .b32 r) f_max(.param .b32 a, .param .b32 b)\n{ .reg .b32 %r<4>;\n"
    "  ld.param.b32 %r1, [a]; ld.param.b32 %r2, [b]; max.s32 %r3, %r1, %r2; st.param.b32 [r], %r3; ret; }\n"
    ".visible .entry k(.param .u64 out, .param .u64 mask_out)\n{\n"
    "  .reg .pred %p<2>; .reg .b32 %r<8>; .reg .b64 %rd<12>;\n"
    "  mov.u32 %r1, %tid.x; and.b32 %r2, %r1, 3;\n"
    "  mov.u64 %rd1, table; mul.wide.u32 %rd2, %r2, 8; add.s64 %rd3, %rd1, %rd2; ld.global.u64 %rd4, [%rd3];\n"
    "  setp.eq.s32 %p1, %r2, 3; mov.u64 %rd5, f_max; selp.b64 %rd4, %rd5, %rd4, %p1;\n"
    "  mul.lo.s32 %r3, %r1, 7;\n"
    "  { .param .b32 a0; .param .b32 a1; .param .b32 rv;\n"
    "    st.param.b32 [a0], %r3; st.param.b32 [a1], 50;\n"
    "    proto : .callprototype (.param .b32 _) _ (.param .b32 _, .param .b32 _);\n"
    "    call (rv), %rd4, (a0, a1), proto;\n"
    "    ld.param.b32 %r4, [rv]; }\n"
    "  activemask.b32 %r5;\n"
    "  ld.param.u64 %rd6, [out]; mul.wide.u32 %rd7, %r1, 4; add.s64 %rd8, %rd6, %rd7; st.global.u32 [%rd8], %r4;\n"
    "  ld.param.u64 %rd9, [mask_out]; add.s64 %rd10, %rd9, %rd7; st.global.u32 [%rd10], %r5;\n"
    "  ret;\n}\n";

Test(indirect, lanes_call_different_functions_and_reconverge)
{
    ptx_module *m = parse_text(table_ptx);
    tmem *mem = tmem_new();
    uint64_t gaddr[4];
    bind_all(m, mem, gaddr);
    const ptx_kernel *k = ptx_module_find_kernel(m, "k");
    cr_assert(k && !ptx_kernel_unsupported(k));
    uint64_t out = tmem_alloc(mem, 64 * 4), masks = tmem_alloc(mem, 64 * 4);
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, out);
    TP_SET(&p, 1, masks);
    char err[256];
    int rc = run1d(k, &p, mem, 1, 64, 0, 1, err, sizeof(err));
    cr_assert_eq(rc, PTX_OK, "%s", err);
    const int32_t *o = tmem_host(mem, out);
    const uint32_t *mk = tmem_host(mem, masks);
    for (int t = 0; t < 64; t++) {
        int a = 7 * t, want = t % 4 == 0 ? a + 50 : t % 4 == 1 ? a * 50 : t % 4 == 2 ? a - 50 : (a > 50 ? a : 50);
        cr_expect_eq(o[t], want, "thread %d: %d, want %d", t, o[t], want);
        cr_expect_eq(mk[t], 0xffffffffu, "thread %d ran with lanes %08x after the call", t, mk[t]);
    }
    tmem_free(mem);
    ptx_module_free(m);
}

/* f calls whatever the pointer argument names, passing itself: f(f) recurses, f(g) does not. */
static const char *const recurse_ptx =
    ".version 8.0\n.target sm_75\n.address_size 64\n"
    ".func g(.param .b64 p);\n"
    ".func f(.param .b64 p);\n"
    ".func g(.param .b64 p)\n{ ret; }\n"
    ".func f(.param .b64 p)\n{ .reg .b64 %rd<3>;\n"
    "  ld.param.b64 %rd1, [p]; mov.u64 %rd2, f;\n"
    "  { .param .b64 a0; st.param.b64 [a0], %rd2;\n"
    "    proto : .callprototype ()_ (.param .b64 _);\n"
    "    call %rd1, (a0), proto; }\n  ret; }\n"
    ".visible .entry k(.param .u32 which, .param .u64 bad)\n{\n"
    "  .reg .pred %p<3>; .reg .b32 %r<2>; .reg .b64 %rd<4>;\n"
    "  ld.param.u32 %r1, [which]; mov.u64 %rd1, f; mov.u64 %rd2, g;\n"
    "  setp.eq.s32 %p1, %r1, 1; selp.b64 %rd3, %rd2, %rd1, %p1;\n"
    "  setp.eq.s32 %p2, %r1, 2; @%p2 ld.param.u64 %rd3, [bad];\n"
    "  { .param .b64 a0; st.param.b64 [a0], %rd3;\n"
    "    proto2 : .callprototype ()_ (.param .b64 _);\n"
    "    call %rd1, (a0), proto2; }\n"
    "  ret;\n}\n";

static int run_recurse(ptx_module *m, uint32_t which, uint64_t bad, char *err)
{
    tmem *mem = tmem_new();
    const ptx_kernel *k = ptx_module_find_kernel(m, "k");
    cr_assert(k);
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, which);
    TP_SET(&p, 1, bad);
    int rc = run1d(k, &p, mem, 1, 32, 0, 1, err, 256);
    tmem_free(mem);
    return rc;
}

Test(indirect, recursion_through_a_pointer_fails_the_launch_not_the_module)
{
    ptx_module *m = parse_text(recurse_ptx);
    char err[256];
    cr_assert_null(ptx_kernel_unsupported(ptx_module_find_kernel(m, "k")));
    cr_expect_eq(run_recurse(m, 1, 0, err), PTX_OK, "f(g): %s", err);
    int rc = run_recurse(m, 0, 0, err);
    cr_expect_eq(rc, PTX_ERR_UNSUPPORTED, "f(f) gave %d: %s", rc, err);
    cr_expect(strstr(err, "recursive"), "%s", err);
    ptx_module_free(m);
}

Test(indirect, pointers_to_no_function_are_illegal_addresses)
{
    ptx_module *m = parse_text(recurse_ptx);
    char err[256];
    /* f(bad): f calls through bad */
    const uint64_t bad[] = {0, 0x1234, PTX_FUNC_WINDOW + 8, PTX_FUNC_WINDOW + 16 * 1000, ~0ull};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = run_recurse(m, 2, bad[i], err);
        cr_expect_eq(rc, PTX_ERR_ILLEGAL_ADDRESS, "call through 0x%llx gave %d: %s",
                     (unsigned long long)bad[i], rc, err);
    }
    ptx_module_free(m);
}

/* A table of addresses of variables (generic and global, with offsets) and a pointer chase. */
static const char *const reloc_ptx =
    ".version 8.0\n.target sm_75\n.address_size 64\n"
    ".global .align 4 .u32 x[4] = {11, 22, 33, 44};\n"
    ".const .align 4 .u32 y = 99;\n"
    ".global .align 8 .u64 ptrs[3] = {generic(x)+8, y, x};\n"
    ".visible .entry k(.param .u64 out)\n{\n"
    "  .reg .b32 %r<4>; .reg .b64 %rd<8>;\n"
    "  mov.u64 %rd1, ptrs; ld.global.u64 %rd2, [%rd1]; ld.u32 %r1, [%rd2];\n"
    "  ld.global.u64 %rd3, [%rd1+8]; ld.u32 %r2, [%rd3];\n"
    "  ld.global.u64 %rd4, [%rd1+16]; ld.u32 %r3, [%rd4+12];\n"
    "  ld.param.u64 %rd5, [out]; st.global.u32 [%rd5], %r1; st.global.u32 [%rd5+4], %r2;\n"
    "  st.global.u32 [%rd5+8], %r3;\n  ret;\n}\n";

Test(indirect, initializers_hold_variable_addresses)
{
    ptx_module *m = parse_text(reloc_ptx);
    tmem *mem = tmem_new();
    uint64_t gaddr[3];
    bind_all(m, mem, gaddr);
    const ptx_kernel *k = ptx_module_find_kernel(m, "k");
    uint64_t out = tmem_alloc(mem, 12);
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, out);
    char err[256];
    cr_assert_eq(run1d(k, &p, mem, 1, 1, 0, 1, err, sizeof(err)), PTX_OK, "%s", err);
    const uint32_t *o = tmem_host(mem, out);
    cr_expect_eq(o[0], 33);
    cr_expect_eq(o[1], 99);
    cr_expect_eq(o[2], 44);
    const uint64_t *slots = tmem_host(mem, gaddr[2]);
    cr_expect_eq(slots[0], gaddr[0] + 8);
    cr_expect_eq(slots[1], gaddr[1]);
    tmem_free(mem);
    ptx_module_free(m);
}

Test(indirect, initializers_naming_unknown_symbols_fail_the_parse)
{
    const char *text = ".version 8.0\n.target sm_75\n.address_size 64\n"
                       ".global .u64 p = nowhere;\n";
    ptx_module *m = NULL;
    char err[256];
    cr_expect_eq(ptx_module_parse(text, strlen(text), &m, err, sizeof(err)), PTX_ERR_PARSE);
    cr_expect_null(m);
}

/* ---- device malloc / free ---- */

/* A test heap: a bump allocator over one allocation, counting calls; free checks addresses. */
typedef struct theap {
    ptx_memory iface;
    tmem *mem;
    uint64_t base, used, size;
    uint64_t live[256];
    int nlive, allocs, frees;
} theap;

static uint64_t theap_alloc(void *ctx, uint64_t size)
{
    theap *h = ctx;
    size = (size + 15) / 16 * 16;
    if (size > h->size - h->used || h->nlive == 256)
        return 0;
    uint64_t a = h->base + h->used;
    h->used += size;
    h->live[h->nlive++] = a;
    h->allocs++;
    return a;
}

static int theap_free(void *ctx, uint64_t addr)
{
    theap *h = ctx;
    for (int i = 0; i < h->nlive; i++)
        if (h->live[i] == addr) {
            h->live[i] = h->live[--h->nlive];
            h->frees++;
            return PTX_OK;
        }
    return PTX_ERR_ILLEGAL_ADDRESS;
}

static void *theap_translate(void *ctx, uint64_t addr, size_t len)
{
    theap *h = ctx;
    return tmem_iface(h->mem)->translate(tmem_iface(h->mem)->ctx, addr, len);
}

static const char *const heap_ptx =
    ".version 8.0\n.target sm_75\n.address_size 64\n"
    ".extern .func (.param .b64 func_retval0) malloc(.param .b64 malloc_param_0);\n"
    ".extern .func free(.param .b64 free_param_0);\n"
    ".visible .entry k(.param .u64 out, .param .u64 size, .param .u64 extra_free)\n{\n"
    "  .reg .pred %p<2>; .reg .b32 %r<4>; .reg .b64 %rd<12>;\n"
    "  mov.u32 %r1, %tid.x; ld.param.u64 %rd1, [size];\n"
    "  { .param .b64 a0; st.param.b64 [a0], %rd1; .param .b64 rv;\n"
    "    call.uni (rv), malloc, (a0); ld.param.b64 %rd2, [rv]; }\n"
    "  ld.param.u64 %rd3, [out]; mul.wide.u32 %rd4, %r1, 8; add.s64 %rd5, %rd3, %rd4;\n"
    "  st.global.u64 [%rd5], %rd2;\n"
    "  setp.eq.s64 %p1, %rd2, 0; @%p1 bra DONE;\n"
    "  st.u32 [%rd2], %r1; ld.u32 %r2, [%rd2]; setp.ne.s32 %p1, %r2, %r1; @%p1 trap;\n"
    "  { .param .b64 a1; st.param.b64 [a1], %rd2; call.uni free, (a1); }\n"
    "DONE:\n"
    "  ld.param.u64 %rd6, [extra_free];\n"
    "  { .param .b64 a2; st.param.b64 [a2], %rd6; call.uni free, (a2); }\n"
    "  ret;\n}\n";

static int heap_run(theap *h, const ptx_kernel *k, uint64_t size, uint64_t extra, uint64_t out, char *err)
{
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, out);
    TP_SET(&p, 1, size);
    TP_SET(&p, 2, extra);
    return launch32(k, &p, &h->iface, NULL, err);
}

Test(indirect, malloc_and_free_go_to_the_driver_heap)
{
    ptx_module *m = parse_text(heap_ptx);
    const ptx_kernel *k = ptx_module_find_kernel(m, "k");
    cr_assert(ptx_kernel_uses_heap(k));
    theap h;
    memset(&h, 0, sizeof(h));
    h.mem = tmem_new();
    h.size = 4096;
    h.base = tmem_alloc(h.mem, h.size);
    h.iface = *tmem_iface(h.mem);
    h.iface.ctx = &h;
    h.iface.translate = theap_translate;
    h.iface.heap_alloc = theap_alloc;
    h.iface.heap_free = theap_free;
    uint64_t out = tmem_alloc(h.mem, 32 * 8);
    char err[256];
    cr_assert_eq(heap_run(&h, k, 24, 0, out, err), PTX_OK, "%s", err);
    cr_expect_eq(h.allocs, 32);
    cr_expect_eq(h.frees, 32);
    const uint64_t *got = tmem_host(h.mem, out);
    for (int t = 0; t < 32; t++) /* lane order: each lane's block follows the previous lane's */
        cr_expect_eq(got[t], h.base + 32u * (unsigned)t, "lane %d got 0x%llx", t, (unsigned long long)got[t]);
    /* The heap is full: malloc gives 0 and the kernel carries on. */
    cr_assert_eq(heap_run(&h, k, 4096, 0, out, err), PTX_OK, "%s", err);
    for (int t = 0; t < 32; t++)
        cr_expect_eq(got[t], 0);
    /* free of what malloc did not return fails the launch. */
    int rc = heap_run(&h, k, 16, 0x1234, out, err);
    cr_expect_eq(rc, PTX_ERR_ILLEGAL_ADDRESS, "free(0x1234) gave %d: %s", rc, err);
    /* Without a heap (no callbacks), malloc gives 0. */
    h.iface.heap_alloc = NULL;
    h.iface.heap_free = NULL;
    cr_assert_eq(heap_run(&h, k, 16, 0, out, err), PTX_OK, "%s", err);
    cr_expect_eq(got[5], 0);
    tmem_free(h.mem);
    ptx_module_free(m);
}

/* ---- %envreg ---- */

Test(indirect, envregs_come_from_the_launch)
{
    const char *text =
        ".version 8.0\n.target sm_75\n.address_size 64\n"
        ".visible .entry k(.param .u64 out)\n{ .reg .b32 %r<4>; .reg .b64 %rd<2>;\n"
        "  mov.u32 %r1, %envreg0; mov.u32 %r2, %envreg2; mov.u32 %r3, %envreg31;\n"
        "  ld.param.u64 %rd1, [out]; st.global.u32 [%rd1], %r1; st.global.u32 [%rd1+4], %r2;\n"
        "  st.global.u32 [%rd1+8], %r3; ret; }\n"
        ".visible .entry bad()\n{ .reg .b32 %r<2>; mov.u32 %r1, %envreg32; ret; }\n";
    ptx_module *m = parse_text(text);
    cr_expect_not_null(ptx_kernel_unsupported(ptx_module_find_kernel(m, "bad")));
    const ptx_kernel *k = ptx_module_find_kernel(m, "k");
    cr_assert_null(ptx_kernel_unsupported(k));
    tmem *mem = tmem_new();
    uint64_t out = tmem_alloc(mem, 12);
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, out);
    uint32_t envreg[32] = {0};
    envreg[0] = 7;
    envreg[2] = 0xdeadbeef;
    envreg[31] = 31;
    char err[256];
    cr_assert_eq(launch32(k, &p, tmem_iface(mem), envreg, err), PTX_OK, "%s", err);
    const uint32_t *o = tmem_host(mem, out);
    cr_expect_eq(o[0], 7);
    cr_expect_eq(o[1], 0xdeadbeef);
    cr_expect_eq(o[2], 31);
    tmem_free(mem);
    ptx_module_free(m);
}

/* Behaviour a GPU has and programs rely on, where the PTX text alone leaves room: 32-bit
 * address arithmetic, shuffles that read lanes not executing them, assert versus trap, a warp
 * reconverging after divergent calls before a barrier or a warp-wide instruction. Each
 * kernel is hand-written PTX so that the instruction under test is exactly what runs. */
#include "ptx_testlib.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static ptx_module *parse_text(const char *text)
{
    ptx_module *m = NULL;
    char err[256];
    cr_assert_eq(ptx_module_parse(text, strlen(text), &m, err, sizeof(err)), PTX_OK, "%s", err);
    return m;
}

/* ld.shared [%r+68] with %r = base - 64: the sum wraps in 32 bits to base + 4 (a 64-bit sum
 * would be 0x1_0000_0004 when base is 0, outside shared memory). */
static const char *const wrap_ptx =
    ".version 7.5\n.target sm_75\n.address_size 64\n"
    ".visible .entry wrap(.param .u64 out)\n{\n"
    "\t.reg .b32 %r<6>;\n\t.reg .b64 %rd<4>;\n\t.reg .f32 %f<3>;\n"
    "\t.shared .align 4 .b8 sh[128];\n"
    "\tmov.u32 %r1, sh;\n\tmov.u32 %r4, %tid.x;\n\tshl.b32 %r5, %r4, 2;\n\tadd.s32 %r1, %r1, %r5;\n"
    "\tadd.s32 %r2, %r1, -64;\n"
    "\tcvt.rn.f32.u32 %f1, %r4;\n\tst.shared.f32 [%r1+4], %f1;\n"
    "\tbar.sync 0;\n"
    "\tld.shared.f32 %f2, [%r2+68];\n"
    "\tld.param.u64 %rd1, [out];\n\tcvta.to.global.u64 %rd2, %rd1;\n"
    "\tmul.wide.u32 %rd3, %r4, 4;\n\tadd.s64 %rd2, %rd2, %rd3;\n"
    "\tst.global.f32 [%rd2], %f2;\n\tret;\n}\n";

Test(semantics, shared_address_wraps_in_32_bits)
{
    ptx_module *m = parse_text(wrap_ptx);
    tmem *mem = tmem_new();
    uint64_t out = tmem_alloc(mem, 16 * 4);
    const ptx_kernel *k = ptx_module_find_kernel(m, "wrap");
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, out);
    char err[256];
    cr_assert_eq(run1d(k, &p, mem, 2, 16, 0, 1, err, sizeof(err)), PTX_OK, "%s", err);
    float *o = tmem_host(mem, out);
    for (int i = 0; i < 16; i++)
        cr_assert_eq(o[i], (float)i, "thread %d: %g", i, o[i]);
    tmem_free(mem);
    ptx_module_free(m);
}

/* Every thread sets v = tid + 100; threads below `active` then run shfl.sync.MODE with the given
 * lane operand and membermask = the active lanes (the ballot() pattern), and store the result
 * and the predicate. */
static const char *const shfl_ptx =
    ".version 7.5\n.target sm_75\n.address_size 64\n"
    ".visible .entry shfl(.param .u64 out, .param .u32 active, .param .u32 mode, .param .u32 b)\n{\n"
    "\t.reg .b32 %r<12>;\n\t.reg .b64 %rd<4>;\n\t.reg .pred %p<8>;\n"
    "\tmov.u32 %r1, %tid.x;\n\tadd.u32 %r2, %r1, 100;\n"
    "\tld.param.u32 %r3, [active];\n\tld.param.u32 %r4, [mode];\n\tld.param.u32 %r5, [b];\n"
    "\tsetp.lt.u32 %p1, %r1, %r3;\n\tvote.sync.ballot.b32 %r6, %p1, -1;\n"
    "\t@!%p1 bra DONE;\n"
    "\tsetp.eq.u32 %p2, %r4, 0;\n\tsetp.eq.u32 %p3, %r4, 1;\n\tsetp.eq.u32 %p4, %r4, 2;\n"
    "\t@%p2 bra UP;\n\t@%p3 bra DOWN;\n\t@%p4 bra BFLY;\n"
    "\tshfl.sync.idx.b32 %r7|%p5, %r2, %r5, 31, %r6;\n\tbra.uni STORE;\n"
    "UP:\n\tshfl.sync.up.b32 %r7|%p5, %r2, %r5, 0, %r6;\n\tbra.uni STORE;\n"
    "DOWN:\n\tshfl.sync.down.b32 %r7|%p5, %r2, %r5, 31, %r6;\n\tbra.uni STORE;\n"
    "BFLY:\n\tshfl.sync.bfly.b32 %r7|%p5, %r2, %r5, 31, %r6;\n"
    "STORE:\n\tselp.u32 %r8, 1, 0, %p5;\n"
    "\tld.param.u64 %rd1, [out];\n\tmul.wide.u32 %rd2, %r1, 8;\n\tadd.s64 %rd3, %rd1, %rd2;\n"
    "\tst.global.v2.u32 [%rd3], {%r7, %r8};\n"
    "DONE:\n\tret;\n}\n";

Test(semantics, shfl_from_lanes_not_executing_it_reads_zero)
{
    ptx_module *m = parse_text(shfl_ptx);
    tmem *mem = tmem_new();
    const ptx_kernel *k = ptx_module_find_kernel(m, "shfl");
    uint64_t out = tmem_alloc(mem, 64 * 8);
    char err[256];
    /* mode: 0 up, 1 down, 2 bfly, 3 idx; block sizes 32 and 20 (a partial warp). */
    for (unsigned block = 20; block <= 32; block += 12) {
        for (unsigned mode = 0; mode < 4; mode++) {
            for (unsigned active = 1; active <= block; active += 7) {
                for (unsigned b = 0; b < 32; b += 5) {
                    memset(tmem_host(mem, out), 0xee, 64 * 8);
                    tparams p;
                    tparams_init(&p, k);
                    TP_SET(&p, 0, out);
                    TP_SET(&p, 1, active);
                    TP_SET(&p, 2, mode);
                    TP_SET(&p, 3, b);
                    cr_assert_eq(run1d(k, &p, mem, 1, block, 0, 1, err, sizeof(err)), PTX_OK, "%s", err);
                    const uint32_t *o = tmem_host(mem, out);
                    for (unsigned l = 0; l < active; l++) {
                        int j, ok;
                        switch (mode) {
                        case 0: j = (int)l - (int)b; ok = j >= 0; break;
                        case 1: j = (int)l + (int)b; ok = j <= 31; break;
                        case 2: j = (int)(l ^ b); ok = 1; break;
                        default: j = (int)b; ok = 1; break;
                        }
                        if (!ok)
                            j = (int)l;
                        uint32_t want = (unsigned)j < active ? (uint32_t)j + 100 : 0;
                        cr_assert_eq(o[2 * l], want, "block %u mode %u active %u b %u lane %u: %u, want %u",
                                     block, mode, active, b, l, o[2 * l], want);
                        cr_assert_eq(o[2 * l + 1], (uint32_t)ok, "predicate, lane %u", l);
                    }
                }
            }
        }
    }
    tmem_free(mem);
    ptx_module_free(m);
}

static const char *const assert_ptx =
    ".version 7.5\n.target sm_75\n.address_size 64\n"
    ".global .align 1 .b8 msg[5] = {98, 97, 100, 33, 0};\n"
    ".extern .func __assertfail(.param .b64 a, .param .b64 b, .param .b32 c, .param .b64 d, .param .b64 e);\n"
    ".visible .entry check(.param .u32 x)\n{\n\t.reg .b32 %r<3>;\n\t.reg .b64 %rd<3>;\n\t.reg .pred %p<2>;\n"
    "\tld.param.u32 %r1, [x];\n\tsetp.ne.u32 %p1, %r1, 3;\n\t@%p1 bra OK;\n"
    "\tmov.u64 %rd1, msg;\n\tcvta.global.u64 %rd2, %rd1;\n\tmov.u32 %r2, 7;\n"
    "\t{\n\t.param .b64 a0;\n\t.param .b64 a1;\n\t.param .b32 a2;\n\t.param .b64 a3;\n\t.param .b64 a4;\n"
    "\tst.param.b64 [a0], %rd2;\n\tst.param.b64 [a1], %rd2;\n\tst.param.b32 [a2], %r2;\n"
    "\tst.param.b64 [a3], %rd2;\n\tst.param.b64 [a4], 1;\n"
    "\tcall __assertfail, (a0, a1, a2, a3, a4);\n\t}\n"
    "OK:\n\tret;\n}\n"
    ".visible .entry trapper()\n{\n\ttrap;\n}\n";

Test(semantics, assert_is_not_trap)
{
    ptx_module *m = parse_text(assert_ptx);
    tmem *mem = tmem_new();
    ptx_global_info g;
    ptx_module_global(m, 0, &g);
    uint64_t msg = tmem_alloc(mem, g.size);
    memcpy(tmem_host(mem, msg), g.init, g.size);
    ptx_module_bind_global(m, 0, msg);
    const ptx_kernel *k = ptx_module_find_kernel(m, "check");
    tparams p;
    tparams_init(&p, k);
    char err[256];
    TP_SET(&p, 0, 2u);
    cr_assert_eq(run1d(k, &p, mem, 1, 32, 0, 1, err, sizeof(err)), PTX_OK, "%s", err);
    TP_SET(&p, 0, 3u);
    cr_assert_eq(run1d(k, &p, mem, 1, 32, 0, 1, err, sizeof(err)), PTX_ERR_ASSERT);
    cr_assert(strstr(err, "bad!") && strstr(err, ":7"), "%s", err);
    const ptx_kernel *t = ptx_module_find_kernel(m, "trapper");
    tparams_init(&p, t);
    cr_assert_eq(run1d(t, &p, mem, 1, 32, 0, 1, err, sizeof(err)), PTX_ERR_TRAP);
    tmem_free(mem);
    ptx_module_free(m);
}

/* Lanes call functions a data-dependent number of times (tid % 5 calls of step, which calls
 * inner for odd values: calls two deep, diverging inside too), then every lane takes a ballot of
 * the whole warp, stores its value to shared memory, waits at bar.sync and reads its neighbour's
 * value, across the warp boundary, then the block sums the values by a tree reduction in shared
 * memory (a barrier per step). On a GPU the warp has reconverged before the ballot and every
 * barrier orders every thread's stores before the loads after it. The functions' code lies after the kernel's (as nvcc puts
 * libdevice's __internal_accurate_pow) or before it. */
static const char *const call_funcs =
    ".func (.param .b32 r) inner(.param .b32 a)\n{\n\t.reg .b32 %s<3>;\n"
    "\tld.param.b32 %s1, [a];\n\tmul.lo.u32 %s2, %s1, 5;\n\tadd.u32 %s2, %s2, 7;\n"
    "\tst.param.b32 [r], %s2;\n\tret;\n}\n"
    ".func (.param .b32 r) step(.param .b32 a)\n{\n\t.reg .b32 %s<4>;\n\t.reg .pred %q<2>;\n"
    "\tld.param.b32 %s1, [a];\n\tand.b32 %s2, %s1, 1;\n\tsetp.eq.u32 %q1, %s2, 0;\n"
    "\t@%q1 bra EVEN;\n"
    "\t{\n\t.param .b32 ia;\n\t.param .b32 ir;\n\tst.param.b32 [ia], %s1;\n"
    "\tcall.uni (ir), inner, (ia);\n\tld.param.b32 %s3, [ir];\n\t}\n\tbra.uni OUT;\n"
    "EVEN:\n\tmul.lo.u32 %s3, %s1, 3;\n\tadd.u32 %s3, %s3, 1;\n"
    "OUT:\n\tst.param.b32 [r], %s3;\n\tret;\n}\n";

static const char *const call_protos =
    ".func (.param .b32 r) inner(.param .b32 a);\n.func (.param .b32 r) step(.param .b32 a);\n";

static const char *const call_kernel =
    ".visible .entry callbar(.param .u64 out)\n{\n"
    "\t.reg .b32 %r<14>;\n\t.reg .b64 %rd<4>;\n\t.reg .pred %p<3>;\n"
    "\t.shared .align 4 .b8 sh[256];\n"
    "\tmov.u32 %r1, %tid.x;\n\tmov.u32 %r2, %r1;\n\trem.u32 %r3, %r1, 5;\n\tmov.u32 %r4, 0;\n"
    "LOOP:\n\tsetp.ge.u32 %p1, %r4, %r3;\n\t@%p1 bra DONE;\n"
    "\t{\n\t.param .b32 a;\n\t.param .b32 r;\n\tst.param.b32 [a], %r2;\n"
    "\tcall.uni (r), step, (a);\n\tld.param.b32 %r2, [r];\n\t}\n"
    "\tadd.u32 %r4, %r4, 1;\n\tbra.uni LOOP;\n"
    "DONE:\n\tsetp.eq.u32 %p2, %r1, %r1;\n\tvote.sync.ballot.b32 %r5, %p2, -1;\n"
    "\tmov.u32 %r6, sh;\n\tshl.b32 %r7, %r1, 2;\n\tadd.u32 %r8, %r6, %r7;\n"
    "\tst.shared.u32 [%r8], %r2;\n"
    "\tbar.sync 0;\n"
    "\tadd.u32 %r9, %r1, 1;\n\tand.b32 %r9, %r9, 63;\n\tshl.b32 %r10, %r9, 2;\n\tadd.u32 %r11, %r6, %r10;\n"
    "\tld.shared.u32 %r12, [%r11];\n"
    "\tld.param.u64 %rd1, [out];\n\tmul.wide.u32 %rd2, %r1, 8;\n\tadd.s64 %rd3, %rd1, %rd2;\n"
    "\tst.global.v2.u32 [%rd3], {%r12, %r5};\n"
    /* A tree reduction of the values, a barrier per step; thread 0 stores the sum after the
     * 64 pairs. */
    "\tbar.sync 0;\n\tmov.u32 %r13, 32;\n"
    "RED:\n\tsetp.ge.u32 %p1, %r1, %r13;\n\t@%p1 bra SKIP;\n"
    "\tshl.b32 %r10, %r13, 2;\n\tadd.u32 %r11, %r8, %r10;\n\tld.shared.u32 %r9, [%r11];\n"
    "\tld.shared.u32 %r7, [%r8];\n\tadd.u32 %r7, %r7, %r9;\n\tst.shared.u32 [%r8], %r7;\n"
    "SKIP:\n\tbar.sync 0;\n\tshr.u32 %r13, %r13, 1;\n\tsetp.ne.u32 %p1, %r13, 0;\n\t@%p1 bra RED;\n"
    "\tsetp.ne.u32 %p1, %r1, 0;\n\t@%p1 bra END;\n"
    "\tld.shared.u32 %r7, [%r6];\n\tst.global.u32 [%rd1+512], %r7;\n"
    "END:\n\tret;\n}\n";

static uint32_t call_step(uint32_t v)
{
    return (v & 1) ? v * 5 + 7 : v * 3 + 1;
}

Test(semantics, warp_reconverges_after_divergent_calls)
{
    for (int funcs_first = 0; funcs_first < 2; funcs_first++) {
        char text[4096];
        snprintf(text, sizeof(text), ".version 7.5\n.target sm_75\n.address_size 64\n%s%s%s",
                 funcs_first ? call_funcs : call_protos, call_kernel, funcs_first ? "" : call_funcs);
        ptx_module *m = parse_text(text);
        tmem *mem = tmem_new();
        const ptx_kernel *k = ptx_module_find_kernel(m, "callbar");
        uint64_t out = tmem_alloc(mem, 64 * 8 + 4);
        tparams p;
        tparams_init(&p, k);
        TP_SET(&p, 0, out);
        char err[256];
        cr_assert_eq(run1d(k, &p, mem, 2, 64, 0, 1, err, sizeof(err)), PTX_OK, "%s", err);
        const uint32_t *o = tmem_host(mem, out);
        uint32_t sum = 0;
        for (uint32_t t = 0; t < 64; t++) {
            uint32_t n = (t + 1) & 63, v = n;
            for (uint32_t i = 0; i < n % 5; i++)
                v = call_step(v);
            sum += v;
            cr_assert_eq(o[2 * t], v, "functions %s the kernel: thread %u read %u from thread %u, want %u",
                         funcs_first ? "before" : "after", t, o[2 * t], n, v);
            cr_assert_eq(o[2 * t + 1], 0xffffffffu, "functions %s the kernel: thread %u's ballot %#x",
                         funcs_first ? "before" : "after", t, o[2 * t + 1]);
        }
        cr_assert_eq(o[128], sum, "functions %s the kernel: the block's sum is %u, want %u",
                     funcs_first ? "before" : "after", o[128], sum);
        tmem_free(mem);
        ptx_module_free(m);
    }
}

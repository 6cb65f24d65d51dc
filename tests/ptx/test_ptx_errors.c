/* Malformed PTX must fail with PTX_ERR_PARSE and "line N: ..." (never crash or hang), and bad
 * memory accesses must stop a launch with PTX_ERR_ILLEGAL_ADDRESS. */
#include "ptx_testlib.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BASIC_PTX PTX_KERNEL_DIR "/basic.ptx"

/* Parses text and returns the status; on failure checks the "line N: " prefix. */
static int parse_status(const char *text, size_t len, char *err, size_t errlen)
{
    ptx_module *m = NULL;
    int rc = ptx_module_parse(text, len, &m, err, errlen);
    if (rc == PTX_OK) {
        cr_assert(m);
        ptx_module_free(m);
    } else {
        cr_assert_null(m);
        int line = -1;
        cr_assert_eq(sscanf(err, "line %d:", &line), 1, "error without a line: '%s'", err);
        cr_assert_geq(line, 0);
    }
    return rc;
}

static int parse_str(const char *text, char *err, size_t errlen)
{
    return parse_status(text, strlen(text), err, errlen);
}

Test(errors, truncated_real_module)
{
    size_t len;
    char *text = read_file(BASIC_PTX, &len);
    char err[256];
    int ok = 0, failed = 0;
    for (size_t cut = 0; cut < len; cut += 47) {
        int rc = parse_status(text, cut, err, sizeof(err));
        cr_assert(rc == PTX_OK || rc == PTX_ERR_PARSE, "cut %zu: rc %d", cut, rc);
        if (rc == PTX_OK)
            ok++;
        else
            failed++;
    }
    cr_assert_gt(failed, 0);
    cr_assert_eq(parse_status(text, len, err, sizeof(err)), PTX_OK, "%s", err);
    free(text);
}

Test(errors, random_bytes)
{
    uint64_t s = 0x1234567;
    char buf[2048];
    char err[256];
    for (int iter = 0; iter < 300; iter++) {
        size_t n = trand(&s) % sizeof(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = (char)trand(&s);
        cr_assert_eq(parse_status(buf, n, err, sizeof(err)) != PTX_OK || n == 0, 1);
    }
}

Test(errors, mutated_real_module)
{
    /* Random single-byte changes of a real module: any outcome but a crash is fine. */
    size_t len;
    char *text = read_file(BASIC_PTX, &len);
    char *copy = malloc(len);
    uint64_t s = 99;
    char err[256];
    const char alphabet[] = "%{}[]();,.:@!<>+-_0123456789abcdefxyz \n/";
    for (int iter = 0; iter < 300; iter++) {
        memcpy(copy, text, len);
        for (int j = 0; j < 3; j++)
            copy[trand(&s) % len] = alphabet[trand(&s) % (sizeof(alphabet) - 1)];
        int rc = parse_status(copy, len, err, sizeof(err));
        cr_assert(rc == PTX_OK || rc == PTX_ERR_PARSE);
    }
    free(copy);
    free(text);
}

static const char *const header = ".version 7.5\n.target sm_75\n.address_size 64\n";

static void expect_parse_error(const char *body, int want_line, const char *fragment)
{
    char text[4096], err[256];
    snprintf(text, sizeof(text), "%s%s", header, body);
    int rc = parse_str(text, err, sizeof(err));
    cr_assert_eq(rc, PTX_ERR_PARSE, "accepted: %s", body);
    int line = 0;
    sscanf(err, "line %d:", &line);
    cr_assert_eq(line, want_line, "line %d, want %d: %s", line, want_line, err);
    if (fragment)
        cr_assert(strstr(err, fragment), "'%s' does not mention '%s'", err, fragment);
}

Test(errors, syntax_errors_still_fail_the_module)
{
    /* Not an instruction at all, or an instruction whose text never ends. */
    expect_parse_error(".visible .entry k()\n{\n\t%r1 = 2;\n}\n", 6, NULL);
    expect_parse_error(".visible .entry k()\n{\n\tfrobnicate.u32 %r1, 2\n", 6, NULL);
    expect_parse_error(".visible .entry k()\n{\n.reg .b32 %r<3>;\n\ttex.1d.v4.s32.s32 {%r1,%r1", 7, NULL);
    /* Known instructions with the wrong operands stay errors. */
    expect_parse_error(".visible .entry k()\n{\n.reg .b32 %r<3>;\n\tshfl.sync.down.b32 %r1, %r2;\n}\n", 7, "operand");
}

/* ---- constructs the emulator cannot run: refused per kernel, never per module ---------------- */

static const char *const unsupported_ptx =
    ".version 7.5\n.target sm_75\n.address_size 64\n"
    ".global .align 8 .u64 vtable[2] = {0, helper};\n"
    ".func helper(.param .b64 t)\n{\n\t.reg .b32 %r<6>;\n\t.reg .b64 %rd<2>;\n\t.reg .f32 %f<3>;\n"
    "\tld.param.b64 %rd1, [t];\n"
    "\ttex.2d.v4.f16.f32 {%f1, %f2, %f1, %f2}, [%rd1, {%f1, %f2}];\n\tret;\n}\n"
    ".visible .entry uses_tex(.param .u64 t)\n{\n\t.reg .b64 %rd<2>;\n"
    "\tld.param.u64 %rd1, [t];\n"
    "\t{\n\t.param .b64 a0;\n\tst.param.b64 [a0], %rd1;\n\tcall helper, (a0);\n\t}\n\tret;\n}\n"
    ".visible .entry uses_wmma(.param .u64 p)\n{\n\t.reg .b64 %rd<2>;\n\t.reg .f32 %f<9>;\n"
    "\tld.param.u64 %rd1, [p];\n"
    "\twmma.load.a.sync.aligned.row.m8n8k32.global.s4 {%f1}, [%rd1];\n"
    "\tret;\n}\n"
    ".visible .entry uses_envreg(.param .u64 p)\n{\n\t.reg .b32 %r<3>;\n"
    "\tmov.u32 %r1, %envreg32;\n\tret;\n}\n"
    ".visible .entry uses_surface(.param .u64 p)\n{\n\t.reg .b32 %r<3>;\n\t.reg .b64 %rd<2>;\n"
    "\tld.param.u64 %rd1, [p];\n\tsust.p.2d.b32.trap [%rd1, {%r1, %r2}], {%r1};\n\tret;\n}\n"
    ".visible .entry unknown_op(.param .u64 p)\n{\n\t.reg .b32 %r<3>;\n"
    "\tfrobnicate.u32 %r1, 2;\n\tret;\n}\n"
    ".visible .entry unknown_modifier(.param .u64 p)\n{\n\t.reg .b32 %r<3>;\n"
    "\tadd.frob.s32 %r1, %r2, 2;\n\tret;\n}\n"
    ".visible .entry indirect(.param .u64 p)\n{\n\t.reg .b64 %rd<2>;\n"
    "\tprototype_0 : .callprototype ()_ (.param .b64 _);\n"
    "\tld.param.u64 %rd1, [p];\n"
    "\t{\n\t.param .b64 a0;\n\tst.param.b64 [a0], %rd1;\n"
    "\tcall %rd1, (a0), prototype_0;\n\t}\n\tret;\n}\n"
    ".visible .entry uses_vtable(.param .u64 p)\n{\n\t.reg .b64 %rd<3>;\n"
    "\tmov.u64 %rd1, vtable;\n\tret;\n}\n"
    ".visible .entry fine(.param .u64 p)\n{\n\t.reg .b32 %r<3>;\n\t.reg .b64 %rd<3>;\n"
    "\tld.param.u64 %rd1, [p];\n\tmov.u32 %r1, %tid.x;\n\tmul.wide.u32 %rd2, %r1, 4;\n"
    "\tadd.s64 %rd1, %rd1, %rd2;\n\tadd.u32 %r1, %r1, 7;\n\tst.global.u32 [%rd1], %r1;\n\tret;\n}\n";

Test(errors, unsupported_constructs_refuse_only_their_kernels)
{
    ptx_module *m = NULL;
    char err[256];
    cr_assert_eq(ptx_module_parse(unsupported_ptx, strlen(unsupported_ptx), &m, err, sizeof(err)), PTX_OK,
                 "%s", err);
    static const struct { const char *kernel, *names; } refused[] = {
        {"uses_tex", "tex.2d.v4.f16.f32"}, {"uses_wmma", "m8n8k32"}, {"uses_envreg", "%envreg32"},
        {"uses_surface", "sust.p.2d.b32.trap"}, {"unknown_op", "frobnicate"},
        {"unknown_modifier", ".frob"},
        /* a call through a pointer may reach every function whose address is taken: helper,
         * through the vtable, which cannot run */
        {"indirect", "tex.2d.v4.f16.f32"},
    };
    tmem *mem = tmem_new();
    uint64_t buf = tmem_alloc(mem, 64 * 4);
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        const ptx_kernel *k = ptx_module_find_kernel(m, refused[i].kernel);
        cr_assert(k, "%s", refused[i].kernel);
        const char *why = ptx_kernel_unsupported(k);
        cr_assert(why && strstr(why, refused[i].names), "%s: %s", refused[i].kernel, why ? why : "(runs)");
        cr_assert(strstr(why, "line "), "%s", why);
        tparams p;
        tparams_init(&p, k);
        TP_SET(&p, 0, buf);
        cr_assert_eq(run1d(k, &p, mem, 1, 32, 0, 1, err, sizeof(err)), PTX_ERR_UNSUPPORTED, "%s", refused[i].kernel);
        cr_assert(strstr(err, refused[i].kernel) && strstr(err, refused[i].names), "%s", err);
    }
    /* Taking the vtable's address is fine (it holds helper's address, which is not called). */
    cr_assert_null(ptx_kernel_unsupported(ptx_module_find_kernel(m, "uses_vtable")));
    /* The module's other kernel runs. */
    const ptx_kernel *k = ptx_module_find_kernel(m, "fine");
    cr_assert_null(ptx_kernel_unsupported(k));
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, buf);
    cr_assert_eq(run1d(k, &p, mem, 1, 64, 0, 1, err, sizeof(err)), PTX_OK, "%s", err);
    uint32_t *out = tmem_host(mem, buf);
    for (uint32_t i = 0; i < 64; i++)
        cr_assert_eq(out[i], i + 7);
    tmem_free(mem);
    ptx_module_free(m);
}

Test(errors, undefined_label_and_register)
{
    expect_parse_error(".visible .entry k()\n{\n.reg .pred %p<2>;\n\t@%p1 bra $L__nowhere;\n\tret;\n}\n",
                       7, "$L__nowhere");
    expect_parse_error(".visible .entry k()\n{\n.reg .b32 %r<3>;\n\tadd.s32 %r1, %r2, %r9;\n}\n", 7, "%r9");
    expect_parse_error(".visible .entry k()\n{\n.reg .b32 %r<3>;\n\tadd.s32 %r1, %q2, 1;\n}\n", 7, "%q2");
}

Test(errors, wrong_operand_count)
{
    expect_parse_error(".visible .entry k()\n{\n.reg .b32 %r<3>;\n\tadd.s32 %r1, %r2;\n}\n", 7, "operand");
    expect_parse_error(".visible .entry k()\n{\n.reg .b32 %r<3>;\n\tmov.u32 %r1, %r2, %r0;\n}\n", 7, "operand");
}

Test(errors, garbage_directives)
{
    expect_parse_error(".visible .entry k(\n", 5, NULL);
    expect_parse_error(".bogus 3;\n", 4, "bogus");
    expect_parse_error(".visible .entry k()\n{\n.reg .b32 %r<3>;\n\tadd.s32 %r1, %r2, 1\n}\n", 8, NULL);
    expect_parse_error(".global .u32 g[4] = {1, 2, 3, 4, 5};\n", 4, "initializer");
}

/* ---- out-of-bounds accesses --------------------------------------------------------------- */

static const char *const oob_ptx =
    ".version 7.5\n.target sm_75\n.address_size 64\n"
    ".visible .entry rd(.param .u64 p, .param .u32 off)\n{\n"
    "\t.reg .b32 %r<4>;\n\t.reg .b64 %rd<5>;\n"
    "\tld.param.u64 %rd1, [p];\n\tld.param.u32 %r1, [off];\n"
    "\tmov.u32 %r2, %tid.x;\n\tadd.s32 %r3, %r1, %r2;\n"
    "\tmul.wide.s32 %rd2, %r3, 4;\n\tadd.s64 %rd3, %rd1, %rd2;\n"
    "\tld.global.u32 %r1, [%rd3];\n\tst.global.u32 [%rd3], %r1;\n\tret;\n}\n"
    ".visible .entry sh(.param .u32 off)\n{\n"
    "\t.reg .b32 %r<4>;\n\t.shared .align 4 .b8 buf[128];\n"
    "\tld.param.u32 %r1, [off];\n\tmov.u32 %r2, buf;\n\tadd.s32 %r3, %r1, %r2;\n"
    "\tst.shared.u32 [%r3], %r1;\n\tret;\n}\n"
    ".visible .entry lo(.param .u32 off)\n{\n"
    "\t.local .align 4 .b8 depot[16];\n\t.reg .b32 %r<4>;\n\t.reg .b64 %rd<4>;\n"
    "\tld.param.u32 %r1, [off];\n\tmov.u64 %rd1, depot;\n\tcvt.u64.u32 %rd2, %r1;\n"
    "\tadd.s64 %rd3, %rd1, %rd2;\n\tst.local.u32 [%rd3], %r1;\n\tret;\n}\n";

static int run_oob(const char *kernel, uint64_t ptr, unsigned off, int with_ptr, char *err)
{
    ptx_module *m = NULL;
    char perr[256];
    cr_assert_eq(ptx_module_parse(oob_ptx, strlen(oob_ptx), &m, perr, sizeof(perr)), PTX_OK, "%s", perr);
    tmem *mem = tmem_new();
    const ptx_kernel *k = ptx_module_find_kernel(m, kernel);
    cr_assert(k);
    tparams p;
    tparams_init(&p, k);
    if (with_ptr) {
        uint64_t base = tmem_alloc(mem, 64 * 4);
        TP_SET(&p, 0, base + ptr);
        TP_SET(&p, 1, off);
    } else {
        TP_SET(&p, 0, off);
    }
    int rc = run1d(k, &p, mem, 2, 64, 0, 2, err, 256);
    tmem_free(mem);
    ptx_module_free(m);
    return rc;
}

Test(errors, global_out_of_bounds)
{
    char err[256];
    cr_assert_eq(run_oob("rd", 0, 0, 1, err), PTX_OK, "%s", err);
    cr_assert_eq(run_oob("rd", 0, 1, 1, err), PTX_ERR_ILLEGAL_ADDRESS);
    cr_assert(strstr(err, "illegal address"), "%s", err);
    cr_assert(strstr(err, "rd"), "%s", err);
    cr_assert_eq(run_oob("rd", 0, (unsigned)-1, 1, err), PTX_ERR_ILLEGAL_ADDRESS);
    cr_assert_eq(run_oob("rd", 0x100000, 0, 1, err), PTX_ERR_ILLEGAL_ADDRESS);
    /* A host pointer is not a device address. */
    cr_assert_eq(run_oob("rd", (uint64_t)(uintptr_t)err - 0x7000000000ull, 0, 1, err), PTX_ERR_ILLEGAL_ADDRESS);
}

Test(errors, shared_out_of_bounds)
{
    char err[256];
    cr_assert_eq(run_oob("sh", 0, 64, 0, err), PTX_OK, "%s", err);
    cr_assert_eq(run_oob("sh", 0, 128, 0, err), PTX_ERR_ILLEGAL_ADDRESS);
    cr_assert(strstr(err, "shared"), "%s", err);
    cr_assert_eq(run_oob("sh", 0, 0x80000000u, 0, err), PTX_ERR_ILLEGAL_ADDRESS);
}

Test(errors, local_out_of_bounds)
{
    char err[256];
    cr_assert_eq(run_oob("lo", 0, 12, 0, err), PTX_OK, "%s", err);
    cr_assert_eq(run_oob("lo", 0, 16, 0, err), PTX_ERR_ILLEGAL_ADDRESS);
    cr_assert(strstr(err, "local"), "%s", err);
    cr_assert_eq(run_oob("lo", 0, 0xfffffff0u, 0, err), PTX_ERR_ILLEGAL_ADDRESS);
}

/* ---- launch-time failures ------------------------------------------------------------------ */

static const char *const misc_ptx =
    ".version 7.5\n.target sm_75\n.address_size 64\n"
    ".func (.param .b32 r) fact(.param .b32 n)\n{\n"
    "\t.reg .b32 %r<4>;\n\t.reg .pred %p<2>;\n"
    "\tld.param.b32 %r1, [n];\n\tsetp.lt.s32 %p1, %r1, 2;\n\t@%p1 bra DONE;\n"
    "\tsub.s32 %r2, %r1, 1;\n"
    "\t{\n\t.param .b32 a0;\n\t.param .b32 rv;\n\tst.param.b32 [a0], %r2;\n"
    "\tcall (rv), fact, (a0);\n\tld.param.b32 %r3, [rv];\n\t}\n"
    "\tmul.lo.s32 %r1, %r1, %r3;\n"
    "DONE:\n\tst.param.b32 [r], %r1;\n\tret;\n}\n"
    ".visible .entry recursive(.param .u32 n)\n{\n\t.reg .b32 %r<3>;\n"
    "\tld.param.u32 %r1, [n];\n"
    "\t{\n\t.param .b32 a0;\n\t.param .b32 rv;\n\tst.param.b32 [a0], %r1;\n"
    "\tcall (rv), fact, (a0);\n\tld.param.b32 %r2, [rv];\n\t}\n\tret;\n}\n"
    ".visible .entry trapper(.param .u32 n)\n{\n\t.reg .b32 %r<3>;\n\t.reg .pred %p<2>;\n"
    "\tmov.u32 %r1, %tid.x;\n\tsetp.eq.u32 %p1, %r1, 5;\n\t@%p1 trap;\n\tret;\n}\n"
    ".visible .entry misaligned(.param .u64 p)\n{\n\t.reg .b32 %r<3>;\n\t.reg .b64 %rd<3>;\n"
    "\tld.param.u64 %rd1, [p];\n\tadd.s64 %rd2, %rd1, 2;\n\tld.global.u32 %r1, [%rd2];\n\tret;\n}\n"
    ".visible .entry param_store(.param .u32 n)\n{\n\t.reg .b32 %r<3>;\n"
    "\tst.param.u32 [n], %r1;\n\tret;\n}\n"
    ".visible .entry spin(.param .u32 n)\n.maxntid 64, 1, 1\n{\n\tret;\n}\n";

static int run_misc(const char *kernel, unsigned block, char *err)
{
    ptx_module *m = NULL;
    char perr[256];
    cr_assert_eq(ptx_module_parse(misc_ptx, strlen(misc_ptx), &m, perr, sizeof(perr)), PTX_OK, "%s", perr);
    tmem *mem = tmem_new();
    const ptx_kernel *k = ptx_module_find_kernel(m, kernel);
    cr_assert(k, "%s", kernel);
    tparams p;
    tparams_init(&p, k);
    if (strcmp(kernel, "misaligned") == 0)
        TP_SET(&p, 0, tmem_alloc(mem, 64));
    else
        TP_SET(&p, 0, 5u);
    int rc = run1d(k, &p, mem, 3, block, 0, 2, err, 256);
    tmem_free(mem);
    ptx_module_free(m);
    return rc;
}

Test(errors, recursion_refused_at_launch)
{
    char err[256];
    cr_assert_eq(run_misc("recursive", 32, err), PTX_ERR_LAUNCH);
    cr_assert(strstr(err, "recursive"), "%s", err);
}

Test(errors, trap_stops_launch)
{
    char err[256];
    cr_assert_eq(run_misc("trapper", 4, err), PTX_OK, "%s", err); /* thread 5 does not exist */
    cr_assert_eq(run_misc("trapper", 32, err), PTX_ERR_TRAP);
    cr_assert(strstr(err, "trap"), "%s", err);
}

Test(errors, misaligned_access)
{
    char err[256];
    cr_assert_eq(run_misc("misaligned", 32, err), PTX_ERR_MISALIGNED);
    cr_assert(strstr(err, "misaligned"), "%s", err);
}

Test(errors, kernel_parameters_are_read_only)
{
    char err[256];
    cr_assert_eq(run_misc("param_store", 32, err), PTX_ERR_ILLEGAL_ADDRESS);
}

Test(errors, bad_launch_configuration)
{
    char err[256];
    cr_assert_eq(run_misc("spin", 64, err), PTX_OK, "%s", err);
    cr_assert_eq(run_misc("spin", 65, err), PTX_ERR_LAUNCH); /* .maxntid 64 */
    cr_assert_eq(run_misc("trapper", 1025, err), PTX_ERR_LAUNCH);
    cr_assert_eq(run_misc("trapper", 0, err), PTX_ERR_LAUNCH);
}

/* ---- instruction budget -------------------------------------------------------------------- */

/* Loops n times (forever for n = 0xffffffff, well past any budget below). */
static const char *const loop_ptx =
    ".version 7.5\n.target sm_75\n.address_size 64\n"
    ".visible .entry count(.param .u32 n)\n{\n\t.reg .b32 %r<4>;\n\t.reg .pred %p<2>;\n"
    "\tld.param.u32 %r1, [n];\n\tmov.u32 %r2, 0;\n"
    "LOOP:\n\tsetp.ge.u32 %p1, %r2, %r1;\n\t@%p1 bra DONE;\n\tadd.u32 %r2, %r2, 1;\n\tbra LOOP;\n"
    "DONE:\n\tret;\n}\n";

static int run_counted(uint32_t n, uint64_t budget, uint64_t *ran, char *err)
{
    ptx_module *m = NULL;
    cr_assert_eq(ptx_module_parse(loop_ptx, strlen(loop_ptx), &m, err, 256), PTX_OK, "%s", err);
    tmem *mem = tmem_new();
    const ptx_kernel *k = ptx_module_find_kernel(m, "count");
    cr_assert(k);
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, n);
    ptx_launch l = {.kernel = k, .grid = {2, 1, 1}, .block = {64, 1, 1}, .params = p.buf,
                    .memory = tmem_iface(mem), .workers = 1, .max_lane_instructions = budget};
    int rc = ptx_launch_run(&l, err, 256);
    *ran = l.lane_instructions;
    tmem_free(mem);
    ptx_module_free(m);
    return rc;
}

Test(errors, instruction_budget_stops_endless_kernel)
{
    char err[256];
    uint64_t ran;
    /* 100 iterations of 4 instructions for 128 threads: about 51,200 lane instructions. */
    cr_assert_eq(run_counted(100, 1000000, &ran, err), PTX_OK, "%s", err);
    cr_assert_gt(ran, 50000);
    cr_assert_lt(ran, 60000);
    cr_assert_eq(run_counted(0xffffffffu, 1000000, &ran, err), PTX_ERR_BUDGET);
    cr_assert(strstr(err, "1000000 lane instructions"), "%s", err);
    cr_assert(strstr(err, "count"), "%s", err);
    /* Checked between a warp's turns: at most one turn (a slice of 32 lanes) more runs. */
    cr_assert_lt(ran, 1000000 + 32 * 8192 + 1);
    /* No budget: the finite kernel runs to its end. */
    cr_assert_eq(run_counted(100, 0, &ran, err), PTX_OK, "%s", err);
}

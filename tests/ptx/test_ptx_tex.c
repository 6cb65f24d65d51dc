/* Texture and surface instructions (tex, tld4, txq, suld, sust, suq): what each hands the
 * driver's callbacks (ptx_memory.tex_fetch / surf_access / tex_query) and where the results go.
 * The callbacks here are fakes that echo their request, and a small byte surface; the driver's
 * real sampler is tested with the runtime program tests/runtime/rt_textures.cu. */
#include "ptx_testlib.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define HANDLE 0x5eed0000aull

static uint32_t f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* Echoes the request: x and y (or ix and iy) bits, then the layer and a summary word. */
static int fake_fetch(void *ctx, uint64_t handle, const ptx_tex_request *q, uint32_t out[4])
{
    (void)ctx;
    if (handle != HANDLE)
        return PTX_ERR_ILLEGAL_ADDRESS;
    out[0] = q->int_coords ? (uint32_t)q->ix : f2u(q->x);
    out[1] = q->int_coords ? (uint32_t)q->iy : f2u(q->y);
    out[2] = q->lod_kind == PTX_TEX_LOD_LEVEL ? f2u(q->lod)
           : q->lod_kind == PTX_TEX_LOD_GRAD ? f2u(q->dpdx[0] + 10 * q->dpdy[1])
           : q->geom == PTX_TEX_3D || q->geom == PTX_TEX_CUBE ? f2u(q->z) : (uint32_t)q->layer;
    out[3] = (uint32_t)q->geom | (uint32_t)q->lod_kind << 8 | (uint32_t)(q->gather + 1) << 16 |
             (uint32_t)q->int_coords << 24;
    return PTX_OK;
}

/* A 64-byte by 4-row by 2-layer surface. */
static uint8_t surface[2][4][64];

static int fake_surf(void *ctx, uint64_t handle, int geom, int32_t x, int32_t y, int32_t z, void *data,
                     unsigned size, int write, int boundary)
{
    (void)ctx;
    (void)geom;
    if (handle != HANDLE)
        return PTX_ERR_ILLEGAL_ADDRESS;
    if (x < 0 || x + (int32_t)size > 64 || y < 0 || y >= 4 || z < 0 || z >= 2) {
        if (boundary == PTX_SURF_TRAP)
            return PTX_ERR_ILLEGAL_ADDRESS;
        if (boundary == PTX_SURF_ZERO) {
            if (!write)
                memset(data, 0, size);
            return PTX_OK;
        }
        x = x < 0 ? 0 : x + (int32_t)size > 64 ? 64 - (int32_t)size : x;
        y = y < 0 ? 0 : y > 3 ? 3 : y;
        z = z < 0 ? 0 : z > 1 ? 1 : z;
    }
    if (write)
        memcpy(&surface[z][y][x], data, size);
    else
        memcpy(data, &surface[z][y][x], size);
    return PTX_OK;
}

static int fake_query(void *ctx, uint64_t handle, int surf, int what, int32_t *out)
{
    (void)ctx;
    if (handle != HANDLE)
        return PTX_ERR_ILLEGAL_ADDRESS;
    *out = 1000 * surf + what;
    return PTX_OK;
}

static ptx_module *parse_text(const char *text)
{
    ptx_module *m = NULL;
    char err[256];
    cr_assert_eq(ptx_module_parse(text, strlen(text), &m, err, sizeof(err)), PTX_OK, "%s", err);
    return m;
}

/* Runs kernel name of text with (out, handle) on one block of n threads, with or without the
 * callbacks. */
static int run(const char *text, const char *name, tmem *mem, uint64_t out, uint64_t handle, unsigned n,
               int callbacks, char *err)
{
    ptx_module *m = parse_text(text);
    const ptx_kernel *k = ptx_module_find_kernel(m, name);
    cr_assert_not_null(k, "%s", name);
    cr_assert_null(ptx_kernel_unsupported(k), "%s", ptx_kernel_unsupported(k));
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, out);
    TP_SET(&p, 1, handle);
    ptx_memory mi = *tmem_iface(mem);
    if (callbacks) {
        mi.tex_fetch = fake_fetch;
        mi.surf_access = fake_surf;
        mi.tex_query = fake_query;
    }
    ptx_launch l;
    memset(&l, 0, sizeof(l));
    l.kernel = k;
    l.grid[0] = l.grid[1] = l.grid[2] = 1;
    l.block[0] = n;
    l.block[1] = l.block[2] = 1;
    l.params = p.buf;
    l.memory = &mi;
    l.workers = 1;
    int rc = ptx_launch_run(&l, err, 256);
    ptx_module_free(m);
    return rc;
}

#define HEAD ".version 7.5\n.target sm_75\n.address_size 64\n"
#define PARAMS "(.param .u64 out, .param .u64 tex)\n{\n" \
    "\t.reg .b32 %r<16>;\n\t.reg .b64 %rd<8>;\n\t.reg .f32 %f<16>;\n\t.reg .b16 %rs<8>;\n\t.reg .pred %p<4>;\n" \
    "\tld.param.u64 %rd1, [tex];\n\tld.param.u64 %rd2, [out];\n\tcvta.to.global.u64 %rd2, %rd2;\n" \
    "\tmov.u32 %r1, %tid.x;\n\tcvt.rn.f32.u32 %f1, %r1;\n\tadd.f32 %f1, %f1, 0f3F000000;\n" \
    "\tmul.wide.u32 %rd3, %r1, 16;\n\tadd.s64 %rd3, %rd2, %rd3;\n"
#define STORE4(a, b, c, d) "\tst.global.v4.b32 [%rd3], {" a ", " b ", " c ", " d "};\n\tret;\n}\n"

/* Lanes 0..n-1 of out (16 bytes each) hold what fake_fetch echoed. */
static void check_echo(const char *name, tmem *mem, uint64_t out, unsigned n, int use_x, uint32_t y, uint32_t w2, uint32_t w3)
{
    const uint32_t *o = tmem_host(mem, out);
    for (unsigned i = 0; i < n; i++) {
        if (use_x)
            cr_assert_eq(o[4 * i], f2u((float)i + 0.5f), "%s: lane %u x", name, i);
        else
            cr_assert_eq(o[4 * i], i, "%s: lane %u ix", name, i);
        cr_assert_eq(o[4 * i + 1], y, "%s: lane %u y: %08x", name, i, o[4 * i + 1]);
        cr_assert_eq(o[4 * i + 2], w2, "%s: lane %u word 2: %08x", name, i, o[4 * i + 2]);
        cr_assert_eq(o[4 * i + 3], w3, "%s: lane %u word 3: %08x", name, i, o[4 * i + 3]);
    }
}

Test(tex, tex_2d_level_grad_gather_and_arrays)
{
    static const char *const text = HEAD
        ".visible .entry t2d" PARAMS
        "\tmov.f32 %f2, 0f40200000;\n" /* 2.5 */
        "\ttex.2d.v4.f32.f32 {%f4, %f5, %f6, %f7}, [%rd1, {%f1, %f2}];\n"
        STORE4("%f4", "%f5", "%f6", "%f7")
        ".visible .entry tlevel" PARAMS
        "\tmov.f32 %f2, 0f40200000;\n"
        "\ttex.level.2d.v4.f32.f32 {%f4, %f5, %f6, %f7}, [%rd1, {%f1, %f2}], 0f3FC00000;\n" /* 1.5 */
        STORE4("%f4", "%f5", "%f6", "%f7")
        ".visible .entry tgrad" PARAMS
        "\tmov.f32 %f2, 0f40200000;\n\tmov.f32 %f8, 0f3F800000;\n\tmov.f32 %f9, 0f40000000;\n"
        "\ttex.grad.2d.v4.f32.f32 {%f4, %f5, %f6, %f7}, [%rd1, {%f1, %f2}], {%f8, %f9}, {%f9, %f8};\n"
        STORE4("%f4", "%f5", "%f6", "%f7")
        ".visible .entry tgather" PARAMS
        "\tmov.f32 %f2, 0f40200000;\n"
        "\ttld4.b.2d.v4.f32.f32 {%f4, %f5, %f6, %f7}, [%rd1, {%f1, %f2}];\n"
        STORE4("%f4", "%f5", "%f6", "%f7")
        ".visible .entry tlayer" PARAMS
        "\tmov.f32 %f2, 0f40200000;\n\tmov.u32 %r2, 7;\n"
        "\ttex.a2d.v4.s32.f32 {%r4, %r5, %r6, %r7}, [%rd1, {%r2, %f1, %f2, %f2}];\n"
        STORE4("%r4", "%r5", "%r6", "%r7")
        ".visible .entry tfetch" PARAMS
        "\tmov.u32 %r2, 0;\n"
        /* the coordinate register is also a destination: every lane reads before any writes */
        "\tmov.u32 %r4, %r1;\n"
        "\ttex.1d.v4.u32.s32 {%r4, %r5, %r6, %r7}, [%rd1, {%r4}];\n"
        STORE4("%r4", "%r5", "%r6", "%r7")
        ".visible .entry t3d" PARAMS
        "\tmov.f32 %f2, 0f40200000;\n\tmov.f32 %f3, 0f40600000;\n" /* 3.5 */
        "\ttex.3d.v4.f32.f32 {%f4, %f5, %f6, %f7}, [%rd1, {%f1, %f2, %f3, %f3}];\n"
        STORE4("%f4", "%f5", "%f6", "%f7");
    const uint32_t y = f2u(2.5f), none = 0 << 8 | 0u << 16;
    struct { const char *name; int use_x; uint32_t w2, w3; } cases[] = {
        {"t2d", 1, 0, PTX_TEX_2D | none},
        {"tlevel", 1, f2u(1.5f), PTX_TEX_2D | PTX_TEX_LOD_LEVEL << 8},
        {"tgrad", 1, f2u(1.0f + 10 * 1.0f), PTX_TEX_2D | PTX_TEX_LOD_GRAD << 8},
        {"tgather", 1, 0, PTX_TEX_2D | 3u << 16},
        {"tlayer", 1, 7, PTX_TEX_A2D},
        {"tfetch", 0, 0, PTX_TEX_1D | 1u << 24},
        {"t3d", 1, f2u(3.5f), PTX_TEX_3D},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        tmem *mem = tmem_new();
        uint64_t out = tmem_alloc(mem, 48 * 16);
        char err[256];
        cr_assert_eq(run(text, cases[c].name, mem, out, HANDLE, 48, 1, err), PTX_OK, "%s: %s", cases[c].name, err);
        /* tex (not tld4) reports gather -1, echoed as 0 */
        check_echo(cases[c].name, mem, out, 48, cases[c].use_x, strcmp(cases[c].name, "tfetch") ? y : 0, cases[c].w2, cases[c].w3);
        tmem_free(mem);
    }
}

static const char *const surf_text = HEAD
    ".visible .entry surf" PARAMS
    /* each lane reads the 4 bytes at (4 tid, row 1, layer 1) and writes them plus 1 to row 2 */
    "\tshl.b32 %r2, %r1, 2;\n\tmov.u32 %r3, 1;\n\tmov.u32 %r4, 2;\n"
    "\tsuld.b.a2d.b32.trap {%r5}, [%rd1, {%r3, %r2, %r3, %r3}];\n"
    "\tadd.s32 %r5, %r5, 1;\n"
    "\tsust.b.a2d.b32.trap [%rd1, {%r3, %r2, %r4, %r4}], {%r5};\n"
    /* a v2.b16 read of row 0, layer 0 past the end (zero), and txq / suq */
    "\tadd.s32 %r6, %r2, 62;\n"
    "\tsuld.b.2d.v2.b16.zero {%rs1, %rs2}, [%rd1, {%r6, %r2}];\n"
    "\tcvt.u32.u16 %r7, %rs1;\n"
    "\ttxq.width.b32 %r8, [%rd1];\n\tsuq.array_size.b32 %r9, [%rd1];\n"
    STORE4("%r5", "%r7", "%r8", "%r9")
    ".visible .entry surf_trap" PARAMS
    "\tmov.u32 %r2, 64;\n"
    "\tsuld.b.1d.b32.trap {%r5}, [%rd1, {%r2}];\n"
    STORE4("%r5", "%r5", "%r5", "%r5");

Test(tex, surfaces_and_queries)
{
    for (int i = 0; i < 64; i++)
        surface[1][1][i] = (uint8_t)(i * 3);
    tmem *mem = tmem_new();
    uint64_t out = tmem_alloc(mem, 16 * 16);
    char err[256];
    cr_assert_eq(run(surf_text, "surf", mem, out, HANDLE, 16, 1, err), PTX_OK, "%s", err);
    const uint32_t *o = tmem_host(mem, out);
    for (int l = 0; l < 16; l++) {
        uint32_t want;
        memcpy(&want, &surface[1][1][4 * l], 4);
        want += 1;
        uint32_t got;
        memcpy(&got, &surface[1][2][4 * l], 4);
        cr_assert_eq(got, want, "lane %d wrote %08x, want %08x", l, got, want);
        cr_assert_eq(o[4 * l], want);
        cr_assert_eq(o[4 * l + 1], 0u, "lane %d: the read past the row should give zero", l);
        cr_assert_eq(o[4 * l + 2], (uint32_t)PTX_TXQ_WIDTH);
        cr_assert_eq(o[4 * l + 3], 1000u + PTX_TXQ_ARRAY_SIZE);
    }
    cr_assert_eq(run(surf_text, "surf_trap", mem, out, HANDLE, 16, 1, err), PTX_ERR_ILLEGAL_ADDRESS);
    cr_assert(strstr(err, "suld"), "%s", err);
    tmem_free(mem);
}

Test(tex, bad_handle_and_no_driver)
{
    tmem *mem = tmem_new();
    uint64_t out = tmem_alloc(mem, 16 * 16);
    char err[256];
    static const char *const text = HEAD ".visible .entry t" PARAMS
        "\ttex.1d.v4.f32.s32 {%f4, %f5, %f6, %f7}, [%rd1, {%r1}];\n" STORE4("%f4", "%f5", "%f6", "%f7");
    cr_assert_eq(run(text, "t", mem, out, HANDLE + 1, 16, 1, err), PTX_ERR_ILLEGAL_ADDRESS);
    cr_assert(strstr(err, "texture object"), "%s", err);
    cr_assert_eq(run(text, "t", mem, out, HANDLE, 16, 0, err), PTX_ERR_UNSUPPORTED);
    tmem_free(mem);
}

Test(tex, unsupported_forms_and_malformed)
{
    /* Forms the emulator does not run make the kernel unsupported, not the module invalid. */
    static const char *const unsup[] = {
        "\ttex.2d.v4.f16.f32 {%rs1, %rs2, %rs3, %rs4}, [%rd1, {%f1, %f1}];\n",
        "\tsust.p.2d.b32.trap [%rd1, {%r1, %r1}], {%r1};\n",
        "\ttex.2dms.v4.f32.s32 {%f4, %f5, %f6, %f7}, [%rd1, {%r1, %r1, %r1, %r1}];\n",
    };
    for (size_t i = 0; i < sizeof(unsup) / sizeof(unsup[0]); i++) {
        char text[2048];
        snprintf(text, sizeof(text), "%s.visible .entry t%s%s\tret;\n}\n", HEAD, PARAMS, unsup[i]);
        ptx_module *m = parse_text(text);
        const ptx_kernel *k = ptx_module_find_kernel(m, "t");
        cr_assert_not_null(ptx_kernel_unsupported(k), "%s", unsup[i]);
        ptx_module_free(m);
    }
    static const char *const bad[] = {
        "\ttex.2d.v4.f32.f32 {%f4}, [%rd1, {%f1, %f1}];\n",         /* one destination */
        "\ttex.2d.v4.f32.f32 {%f4, %f5, %f6, %f7}, [%r1, {%f1, %f1}];\n", /* 32-bit handle */
        "\tsuld.b.2d.v2.b32.trap {%r4}, [%rd1, {%r1, %r1}];\n",    /* v2 into one register */
        "\ttxq.width.b32 %r4, [%rd1, {%r1}];\n",                   /* coordinates on a query */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[2048], err[256];
        snprintf(text, sizeof(text), "%s.visible .entry t%s%s\tret;\n}\n", HEAD, PARAMS, bad[i]);
        ptx_module *m = NULL;
        cr_assert_neq(ptx_module_parse(text, strlen(text), &m, err, sizeof(err)), PTX_OK, "%s", bad[i]);
    }
}

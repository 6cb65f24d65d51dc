/* Every forwarded call, end to end: through the stub (this process links build/lib/libcuda.so.1)
 * and a real gpu-server to the recording driver (rec.h), which logs what arrives. A case per
 * call: the generated ones (cuapi_rec_cases.c) for the calls the list describes, the ones here
 * for the calls written by hand. Each checks that the arguments arrived (handles as the driver's
 * own objects, device addresses unchanged, buffers byte for byte), that the outputs the driver
 * wrote came back, and that the handles that came back are the session's ids. A last test checks
 * that no forwarded call is without a case. */
#include <criterion/criterion.h>
#include <cuda.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "calls.h"
#include "cuapi_handles.h"
#include "frame.h"
#include "harness.h"
#include "rec.h"
#include "vg_gen.h"

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#define MAX_IDS 4096

struct rec_test {
    char dir[256], log[300];
    pid_t server;
    struct {
        int type;
        uint64_t id, real;
    } ids[MAX_IDS];
    unsigned nids;
    uint64_t h[H_TYPES];      /* one object of each kind, made at setup */
    CUdeviceptr mem;          /* a 1 MiB allocation */
    CUcontext ctx;
    int failures;
    char failed[8192];
};

static struct rec_test T;

/* ---- the log ------------------------------------------------------------------------------- */

/* The last line the driver wrote for name (static storage), or NULL. */
static const char *last_line(const char *name)
{
    static char found[16384];
    FILE *f = fopen(T.log, "r");
    if (!f)
        return NULL;
    char line[16384];
    size_t n = strlen(name);
    int have = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, name, n) == 0 && (line[n] == ' ' || line[n] == '\n')) {
            snprintf(found, sizeof found, "%s", line);
            found[strcspn(found, "\n")] = 0;
            have = 1;
        }
    fclose(f);
    return have ? found : NULL;
}

/* The i-th output (after '|') of the last line for name, as a number. */
static uint64_t out_of(const char *name, int i)
{
    const char *l = last_line(name);
    const char *p = l ? strchr(l, '|') : NULL;
    for (int k = 0; p && k <= i; k++) {
        p = strchr(p + 1, ' ');
        if (p && k == i)
            return strtoull(p + 1, NULL, 0);
    }
    return 0;
}

static void fail(const char *name, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cr_log_error("%s: %s", name, msg);
    T.failures++;
    size_t len = strlen(T.failed);
    snprintf(T.failed + len, sizeof T.failed - len, "%s%s", len ? " " : "", name);
}

/* ---- handles -------------------------------------------------------------------------------- */

static void remember(int type, uint64_t id, uint64_t real)
{
    if (T.nids < MAX_IDS)
        T.ids[T.nids++] = (typeof(T.ids[0])){type, id, real};
}

uint64_t rec_real(struct rec_test *t, int type, uint64_t id)
{
    if (type == H_TEXOBJ || type == H_SURFOBJ)
        return id;
    if (type == H_STREAM && id <= 2)
        return id;
    for (unsigned i = t->nids; i-- > 0;)
        if (t->ids[i].id == id)
            return t->ids[i].real;
    return 0xbad;
}

uint64_t rec_h(struct rec_test *t, int type)
{
    return t->h[type];
}

CUdeviceptr rec_dev(struct rec_test *t)
{
    return t->mem + 64;
}

void rec_handles_of(struct rec_line *l, struct rec_test *t, int type, void *const *ids, size_t n)
{
    uint64_t reals[64];
    for (size_t i = 0; i < n && i < 64; i++)
        reals[i] = rec_real(t, type, (uint64_t)(uintptr_t)ids[i]);
    rec_handles(l, reals, n);
}

/* Creates an object of a kind through the stub; the driver's line says which object it made
 * (its first output). */
static uint64_t make(int type);

uint64_t rec_fresh(struct rec_test *t, int type)
{
    (void)t;
    return make(type);
}

CUdeviceptr rec_fresh_alloc(struct rec_test *t)
{
    (void)t;
    CUdeviceptr p = 0;
    if (cuMemAlloc(&p, 256) != CUDA_SUCCESS)
        fail("cuMemAlloc", "setup allocation failed");
    return p;
}

/* ---- checks -------------------------------------------------------------------------------------- */

void rec_check(struct rec_test *t, const char *name, CUresult rc, const struct rec_line *e, int pipelined)
{
    (void)t;
    if (pipelined)
        cuCtxSynchronize();
    if (rc != CUDA_SUCCESS) {
        fail(name, "returned %d", (int)rc);
        return;
    }
    const char *got = last_line(name);
    if (!got) {
        fail(name, "the driver saw no call");
        return;
    }
    if (strncmp(got, e->buf, e->len) != 0)
        fail(name, "the driver saw\n    %s\n  expected\n    %s", got, e->buf);
}

void rec_check_value(struct rec_test *t, const char *name, double got, double want)
{
    (void)t;
    if (got != want)
        fail(name, "an output came back as %g, the driver wrote %g", got, want);
}

void rec_check_fill(struct rec_test *t, const char *name, const void *p, size_t n, int k)
{
    (void)t;
    unsigned char want[4096];
    if (n > sizeof want)
        n = sizeof want;
    rec_fill(want, n, k);
    if (memcmp(p, want, n) != 0)
        fail(name, "output buffer %d came back different", k);
}

void rec_check_ids(struct rec_test *t, const char *name, int type, void *const *ids, size_t n)
{
    (void)t;
    for (size_t i = 0; i < n; i++) {
        uint64_t id = (uint64_t)(uintptr_t)ids[i];
        int identity = type == H_TEXOBJ || type == H_SURFOBJ;
        if (!id || (!identity && (int)(id >> 56) != type)) {
            fail(name, "handle %zu came back as %#llx, not an id of kind %d", i, (unsigned long long)id, type);
            return;
        }
    }
}

void rec_check_nonzero(struct rec_test *t, const char *name, uint64_t v)
{
    (void)t;
    if (!v)
        fail(name, "an address came back as 0");
}

void rec_check_ctx(struct rec_test *t, const char *name, uint64_t id)
{
    if (id != (uint64_t)(uintptr_t)t->ctx)
        fail(name, "the context came back as %#llx, not the current one", (unsigned long long)id);
}

void rec_check_str(struct rec_test *t, const char *name, const char *got, long long len)
{
    (void)t;
    char want[64];
    snprintf(want, len > 0 && len < 64 ? (size_t)len : 64, "rec-name");
    if (strcmp(got, want) != 0)
        fail(name, "the string came back as \"%s\", expected \"%s\"", got, want);
}

uint64_t rec_forged(struct rec_test *t, int type)
{
    (void)t;
    if (type == H_TEXOBJ || type == H_SURFOBJ)
        return 0x77777777; /* identity kinds: a value the session never handed out */
    return ((uint64_t)type << 56) | (0x123ull << 32) | 0xfffff;
}

unsigned rec_seen(struct rec_test *t, const char *name)
{
    FILE *f = fopen(t->log, "r");
    if (!f)
        return 0;
    static char line[65536];
    size_t n = strlen(name);
    unsigned count = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, name, n) == 0 && (line[n] == ' ' || line[n] == '\n'))
            count++;
    fclose(f);
    return count;
}

void rec_check_refused(struct rec_test *t, const char *name, const char *what, CUresult rc, unsigned before,
                       int pipelined)
{
    if (pipelined) {
        CUresult sync = cuCtxSynchronize(); /* a deferred failure comes here */
        if (rc == CUDA_SUCCESS)
            rc = sync;
    }
    if (rc == CUDA_SUCCESS)
        fail(name, "a forged %s was accepted", what);
    if (rec_seen(t, name) != before)
        fail(name, "a forged %s reached the driver", what);
}

/* ---- the server -------------------------------------------------------------------------------- */

static const char *tenants_file; /* --tenants for the accounting test */

static void start_server(void)
{
    snprintf(T.dir, sizeof T.dir, "/tmp/vgpu-recdrv-XXXXXX");
    cr_assert_not_null(mkdtemp(T.dir));
    snprintf(T.log, sizeof T.log, "%s/calls.log", T.dir);
    char port_file[300], driver[512];
    snprintf(port_file, sizeof port_file, "%s/port", T.dir);
    snprintf(driver, sizeof driver, "%s/libcuda.so.1", VG_RECDRV_DIR);
    setenv("VGPU_REC_LOG", T.log, 1);
    T.server = fork();
    cr_assert_geq(T.server, 0);
    if (T.server == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* no server outlives a test that stopped early */
        if (tenants_file)
            execl(VG_BUILD_DIR "/bin/gpu-server", "gpu-server", "--listen", "127.0.0.1:0", "--port-file", port_file,
                  "--driver", driver, "--max-frame", "16M", "--admin", "none", "--tenants", tenants_file,
                  (char *)NULL);
        else
            execl(VG_BUILD_DIR "/bin/gpu-server", "gpu-server", "--listen", "127.0.0.1:0", "--port-file", port_file,
                  "--driver", driver, "--max-frame", "16M", "--admin", "none", (char *)NULL);
        _exit(127);
    }
    int port = 0;
    for (int i = 0; i < 200 && !port; i++) {
        FILE *f = fopen(port_file, "r");
        if (f) {
            if (fscanf(f, "%d", &port) != 1)
                port = 0;
            fclose(f);
        }
        if (!port)
            usleep(50000);
    }
    cr_assert_gt(port, 0, "gpu-server did not start with the recording driver");
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    th_srv.port = port; /* the raw clients of tests/remote/harness.c */
    setenv("VGPU_SERVER", addr, 1);
}

static void stop_server(void)
{
    if (T.server > 0) {
        kill(T.server, SIGTERM);
        waitpid(T.server, NULL, 0);
    }
    if (getenv("VGPU_REC_KEEP")) {
        cr_log_info("the driver's log: %s", T.log);
        return;
    }
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", T.dir);
    if (system(cmd) != 0)
        cr_log_warn("could not remove %s", T.dir);
}

/* ---- objects of every kind ---------------------------------------------------------------------------- */

static const char ptx[] = "rec-ptx";

static uint64_t made(const char *call, int type, uint64_t id, CUresult rc)
{
    if (rc != CUDA_SUCCESS || !id) {
        fail(call, "making an object of kind %d failed (%d)", type, (int)rc);
        return 0;
    }
    uint64_t real = out_of(call, 0);
    remember(type, id, type == H_TEXOBJ || type == H_SURFOBJ ? id : real);
    return id;
}

static uint64_t make(int type)
{
    CUresult rc = CUDA_ERROR_UNKNOWN;
    void *h = NULL;
    uint64_t u = 0;
    switch (type) {
    case H_STREAM:
        rc = cuStreamCreate((CUstream *)&h, 0);
        return made("cuStreamCreate", type, (uint64_t)(uintptr_t)h, rc);
    case H_EVENT:
        rc = cuEventCreate((CUevent *)&h, 0);
        return made("cuEventCreate", type, (uint64_t)(uintptr_t)h, rc);
    case H_GRAPH:
        rc = cuGraphCreate((CUgraph *)&h, 0);
        return made("cuGraphCreate", type, (uint64_t)(uintptr_t)h, rc);
    case H_GNODE:
        rc = cuGraphAddEmptyNode((CUgraphNode *)&h, (CUgraph)(uintptr_t)T.h[H_GRAPH], NULL, 0);
        return made("cuGraphAddEmptyNode", type, (uint64_t)(uintptr_t)h, rc);
    case H_GEXEC:
        rc = cuGraphInstantiateWithFlags((CUgraphExec *)&h, (CUgraph)(uintptr_t)T.h[H_GRAPH], 0);
        return made("cuGraphInstantiateWithFlags", type, (uint64_t)(uintptr_t)h, rc);
    case H_POOL: {
        CUmemPoolProps props = {.allocType = CU_MEM_ALLOCATION_TYPE_PINNED,
                                .location = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = 0}};
        rc = cuMemPoolCreate((CUmemoryPool *)&h, &props);
        return made("cuMemPoolCreate", type, (uint64_t)(uintptr_t)h, rc);
    }
    case H_ARRAY: {
        CUDA_ARRAY_DESCRIPTOR d = {.Width = 16, .Height = 16, .Format = CU_AD_FORMAT_FLOAT, .NumChannels = 1};
        rc = cuArrayCreate((CUarray *)&h, &d);
        return made("cuArrayCreate_v2", type, (uint64_t)(uintptr_t)h, rc);
    }
    case H_MIPMAP: {
        CUDA_ARRAY3D_DESCRIPTOR d = {.Width = 16, .Height = 16, .Format = CU_AD_FORMAT_FLOAT, .NumChannels = 1};
        rc = cuMipmappedArrayCreate((CUmipmappedArray *)&h, &d, 2);
        return made("cuMipmappedArrayCreate", type, (uint64_t)(uintptr_t)h, rc);
    }
    case H_TEXOBJ:
    case H_SURFOBJ: {
        CUDA_RESOURCE_DESC r = {.resType = CU_RESOURCE_TYPE_ARRAY};
        r.res.array.hArray = (CUarray)(uintptr_t)T.h[H_ARRAY];
        CUDA_TEXTURE_DESC td = {.filterMode = CU_TR_FILTER_MODE_POINT};
        if (type == H_TEXOBJ) {
            rc = cuTexObjectCreate((CUtexObject *)&u, &r, &td, NULL);
            return made("cuTexObjectCreate", type, u, rc);
        }
        rc = cuSurfObjectCreate((CUsurfObject *)&u, &r);
        return made("cuSurfObjectCreate", type, u, rc);
    }
    case H_TEXREF:
        rc = cuTexRefCreate((CUtexref *)&h);
        return made("cuTexRefCreate", type, (uint64_t)(uintptr_t)h, rc);
    case H_SURFREF:
        rc = cuModuleGetSurfRef((CUsurfref *)&h, (CUmodule)(uintptr_t)T.h[H_MOD], "surf");
        return made("cuModuleGetSurfRef", type, (uint64_t)(uintptr_t)h, rc);
    case H_FUNC:
        rc = cuModuleGetFunction((CUfunction *)&h, (CUmodule)(uintptr_t)T.h[H_MOD], "f");
        return made("cuModuleGetFunction", type, (uint64_t)(uintptr_t)h, rc);
    case H_KERN:
        rc = cuLibraryGetKernel((CUkernel *)&h, (CUlibrary)(uintptr_t)T.h[H_LIB], "k");
        return made("cuLibraryGetKernel", type, (uint64_t)(uintptr_t)h, rc);
    case H_MOD:
        rc = cuModuleLoadData((CUmodule *)&h, ptx);
        return made("cuModuleLoadData", type, (uint64_t)(uintptr_t)h, rc);
    case H_LIB:
        rc = cuLibraryLoadData((CUlibrary *)&h, ptx, NULL, NULL, 0, NULL, NULL, 0);
        return made("cuLibraryLoadData", type, (uint64_t)(uintptr_t)h, rc);
    case H_MEMH: {
        CUmemAllocationProp p = {.type = CU_MEM_ALLOCATION_TYPE_PINNED,
                                 .location = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = 0}};
        rc = cuMemCreate((CUmemGenericAllocationHandle *)&u, 1 << 16, &p, 0);
        return made("cuMemCreate", type, u, rc);
    }
    case H_LINK:
        rc = cuLinkCreate(0, NULL, NULL, (CUlinkState *)&h);
        return made("cuLinkCreate_v2", type, (uint64_t)(uintptr_t)h, rc);
    case H_RDESC: {
        CUdevResource res;
        memset(&res, 0, sizeof res);
        res.type = CU_DEV_RESOURCE_TYPE_SM;
        rc = cuDevResourceGenerateDesc((CUdevResourceDesc *)&h, &res, 1);
        return made("cuDevResourceGenerateDesc", type, (uint64_t)(uintptr_t)h, rc);
    }
    case H_GREEN:
        rc = cuGreenCtxCreate((CUgreenCtx *)&h, (CUdevResourceDesc)(uintptr_t)T.h[H_RDESC], 0,
                              CU_GREEN_CTX_DEFAULT_STREAM);
        return made("cuGreenCtxCreate", type, (uint64_t)(uintptr_t)h, rc);
    case H_CTX:
        return (uint64_t)(uintptr_t)T.ctx;
    default:
        fail("setup", "no maker for handle kind %d", type);
        return 0;
    }
}

static void setup(void)
{
    memset(&T, 0, sizeof T);
    start_server();
    cr_assert_eq(cuInit(0), CUDA_SUCCESS);
    cr_assert_eq(cuDevicePrimaryCtxRetain(&T.ctx, 0), CUDA_SUCCESS);
    remember(H_CTX, (uint64_t)(uintptr_t)T.ctx, out_of("cuCtxCreate_v4", 0));
    cr_assert_eq(cuCtxSetCurrent(T.ctx), CUDA_SUCCESS);
    cr_assert_eq(cuMemAlloc(&T.mem, 1 << 20), CUDA_SUCCESS);
    /* Kinds in an order that has what each maker needs. */
    static const int order[] = {H_MOD, H_LIB, H_FUNC, H_KERN, H_STREAM, H_EVENT, H_GRAPH, H_GNODE, H_GEXEC,
                                H_POOL, H_ARRAY, H_MIPMAP, H_TEXOBJ, H_SURFOBJ, H_TEXREF, H_SURFREF, H_MEMH,
                                H_LINK, H_RDESC, H_GREEN, H_CTX};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        T.h[order[i]] = make(order[i]);
    cr_assert_eq(T.failures, 0, "setup failed: %s", T.failed);
}

#include "rec_cases.inc"

TestSuite(recdrv, .init = setup, .fini = stop_server, .timeout = 600);

/* Whether call id has a case: generated or written here. */
static rec_case_fn case_of(unsigned id)
{
    for (unsigned i = 0; i < rec_generated_count; i++)
        if (rec_generated_cases[i].call == id)
            return rec_generated_cases[i].fn;
    for (unsigned i = 0; i < sizeof hand_cases / sizeof hand_cases[0]; i++)
        if (hand_cases[i].call == id)
            return hand_cases[i].fn;
    return NULL;
}

Test(recdrv, every_forwarded_call_reaches_the_driver_and_back)
{
    /* In call order, but the primary context's reset last: it ends every object of the context. */
    unsigned run = 0;
    for (unsigned id = 0; id < VG_CALL_COUNT; id++) {
        rec_case_fn fn = case_of(id);
        if (fn && id != VG_CALL_cuDevicePrimaryCtxReset_v2) {
            fn(&T);
            run++;
        }
    }
    case_of(VG_CALL_cuDevicePrimaryCtxReset_v2)(&T);
    run++;
    cr_log_info("%u of %u forwarded calls checked end to end", run, (unsigned)VG_CALL_COUNT);
    cr_assert_eq(T.failures, 0, "%d failures: %s", T.failures, T.failed);
}

/* The generated hostile variants: the session's checks stop every one before the driver. */
Test(recdrv, forged_handles_and_foreign_addresses_never_reach_the_driver)
{
    for (unsigned i = 0; i < rec_hostile_count; i++)
        rec_hostile_cases[i].fn(&T);
    cr_log_info("%u forged handles and foreign addresses refused", rec_hostile_count);
    cr_assert_eq(T.failures, 0, "%d failures: %s", T.failures, T.failed);
}

/* ---- absurd counts, wrong kinds and bad devices, as raw frames (the stub would refuse them
 * before sending) ---------------------------------------------------------------------------- */

static uint64_t raw_new(int fd, unsigned call, uint64_t ctx, const uint64_t *args, size_t nargs, const void *bulk,
                        size_t bulk_len)
{
    Vgpu__Reply *r = th_call(fd, call, ctx, args, nargs, "f", bulk, bulk_len, NULL, 0);
    cr_assert_eq(r->result, 0, "%s failed: %d", vg_call_name(call), (int)r->result);
    uint64_t id = r->n_outs ? r->outs[0] : 0;
    th_reply_free(r);
    return id;
}

/* One raw call that must fail with want and never reach the driver (as `driver_name`). */
static void refused(int fd, uint64_t ctx, unsigned call, const char *driver_name, const uint64_t *args, size_t nargs,
                    const void *bulk, size_t bulk_len, CUresult want, const char *what)
{
    unsigned before = rec_seen(&T, driver_name);
    Vgpu__Reply *r = th_call(fd, call, ctx, args, nargs, NULL, bulk, bulk_len, NULL, 0);
    if ((CUresult)r->result != want)
        fail(vg_call_name(call), "%s: got %d, expected %d", what, (int)r->result, (int)want);
    th_reply_free(r);
    if (rec_seen(&T, driver_name) != before)
        fail(vg_call_name(call), "%s reached the driver", what);
}

Test(recdrv, absurd_counts_wrong_kinds_and_bad_devices_are_refused)
{
    int fd = th_connect_hello_any();
    raw_new(fd, VG_CALL_cuInit, 0, (uint64_t[]){0}, 1, NULL, 0);
    uint64_t ctx = raw_new(fd, VG_CALL_cuDevicePrimaryCtxRetain, 0, (uint64_t[]){0}, 1, NULL, 0);
    uint64_t graph = raw_new(fd, VG_CALL_cuGraphCreate, ctx, (uint64_t[]){0}, 1, NULL, 0);
    uint64_t stream = raw_new(fd, VG_CALL_cuStreamCreate, ctx, (uint64_t[]){0}, 1, NULL, 0);
    uint64_t node = raw_new(fd, VG_CALL_cuGraphAddEmptyNode, ctx, (uint64_t[]){graph, 0, 0}, 3, NULL, 0);
    CUmemPoolProps props = {.allocType = CU_MEM_ALLOCATION_TYPE_PINNED,
                            .location = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = 0}};
    uint64_t pool = raw_new(fd, VG_CALL_cuMemPoolCreate, ctx, NULL, 0, &props, sizeof props);
    uint64_t mem = raw_new(fd, VG_CALL_cuMemAlloc_v2, ctx, (uint64_t[]){1 << 16}, 1, NULL, 0);
    uint64_t mod = raw_new(fd, VG_CALL_cuModuleLoadData, ctx, NULL, 0, "rec-ptx", 8);
    uint64_t func = raw_new(fd, VG_CALL_cuModuleGetFunction, ctx, (uint64_t[]){mod}, 1, NULL, 0);
    const uint64_t huge[] = {1ull << 40, UINT64_MAX / 8, UINT64_MAX};
    for (int k = 0; k < 3; k++) {
        uint64_t n = huge[k];
        char what[64];
        snprintf(what, sizeof what, "a count of %#llx", (unsigned long long)n);
        refused(fd, ctx, VG_CALL_cuGraphAddDependencies_v2, "cuGraphAddDependencies_v2",
                (uint64_t[]){graph, 0, n}, 3, NULL, 0, CUDA_ERROR_INVALID_VALUE, what);
        refused(fd, ctx, VG_CALL_cuGraphAddEmptyNode, "cuGraphAddEmptyNode", (uint64_t[]){graph, 1, n}, 3, NULL, 0,
                CUDA_ERROR_INVALID_VALUE, what);
        refused(fd, ctx, VG_CALL_cuMemPoolSetAccess, "cuMemPoolSetAccess", (uint64_t[]){pool, n}, 2, NULL, 0,
                CUDA_ERROR_INVALID_VALUE, what);
        refused(fd, ctx, VG_CALL_cuMemSetAccess, "cuMemSetAccess", (uint64_t[]){mem, 4096, n}, 3, NULL, 0,
                CUDA_ERROR_INVALID_VALUE, what);
        /* Output arrays the caller claims are that long: the server allocates nothing for them. */
        refused(fd, ctx, VG_CALL_cuGraphGetNodes, "cuGraphGetNodes", (uint64_t[]){graph, 1, n}, 3, NULL, 0,
                CUDA_ERROR_INVALID_VALUE, what);
        refused(fd, ctx, VG_CALL_cuGraphNodeGetDependencies_v2, "cuGraphNodeGetDependencies_v2",
                (uint64_t[]){node, 1, 1, n}, 4, NULL, 0, CUDA_ERROR_INVALID_VALUE, what);
        refused(fd, ctx, VG_CALL_cuStreamBatchMemOp_v2, "cuStreamBatchMemOp_v2", (uint64_t[]){stream, n, 0}, 3, NULL,
                0, CUDA_ERROR_INVALID_VALUE, what);
        /* A launch configuration claiming that many attributes. */
        struct {
            CUlaunchConfig c;
            uint64_t nattrs;
        } cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.c.gridDimX = cfg.c.gridDimY = cfg.c.gridDimZ = cfg.c.blockDimX = cfg.c.blockDimY = cfg.c.blockDimZ = 1;
        cfg.c.numAttrs = (unsigned)n;
        cfg.nattrs = n;
        refused(fd, ctx, VG_CALL_cuLaunchKernelEx, "cuLaunchKernelEx", (uint64_t[]){func, 0}, 2, &cfg, sizeof cfg,
                CUDA_ERROR_INVALID_VALUE, what);
    }
    /* A handle of another kind where a graph goes; a stream where a node goes. */
    refused(fd, ctx, VG_CALL_cuGraphAddEmptyNode, "cuGraphAddEmptyNode", (uint64_t[]){stream, 0, 0}, 3, NULL, 0,
            CUDA_ERROR_INVALID_HANDLE, "a stream as the graph");
    refused(fd, ctx, VG_CALL_cuGraphDestroyNode, "cuGraphDestroyNode", (uint64_t[]){stream}, 1, NULL, 0,
            CUDA_ERROR_INVALID_HANDLE, "a stream as the node");
    refused(fd, ctx, VG_CALL_cuMemPoolTrimTo, "cuMemPoolTrimTo", (uint64_t[]){graph, 0}, 2, NULL, 0,
            CUDA_ERROR_INVALID_HANDLE, "a graph as the pool");
    /* The NVML calls: devices the session does not have. */
    refused(fd, 0, VG_CALL_vgNvmlDevice, "cuDeviceGetName", (uint64_t[]){1000}, 1, NULL, 0, CUDA_ERROR_INVALID_DEVICE,
            "device 1000");
    refused(fd, 0, VG_CALL_vgNvmlDevice, "cuDeviceGetName", (uint64_t[]){UINT64_MAX}, 1, NULL, 0,
            CUDA_ERROR_INVALID_DEVICE, "device 2^64-1");
    refused(fd, 0, VG_CALL_vgNvmlDevice, "cuDeviceGetName", NULL, 0, NULL, 0, CUDA_ERROR_INVALID_VALUE,
            "no device argument");
    /* The session still works. */
    raw_new(fd, VG_CALL_cuGraphAddEmptyNode, ctx, (uint64_t[]){graph, 0, 0}, 3, NULL, 0);
    close(fd);
    cr_assert_eq(T.failures, 0, "%d failures: %s", T.failures, T.failed);
}

/* Random calls over every call id, arguments drawn from the session's real handles and memory,
 * special values and random numbers, random bulk: with a driver that implements everything, every
 * generated handler is reached; each call gets a reply and the server survives (under ASan: with
 * no memory error). */
Test(recdrv, random_calls_reach_every_handler_and_get_replies, .timeout = 600)
{
    int fd = th_connect_hello_any();
    raw_new(fd, VG_CALL_cuInit, 0, (uint64_t[]){0}, 1, NULL, 0);
    uint64_t ctx = raw_new(fd, VG_CALL_cuDevicePrimaryCtxRetain, 0, (uint64_t[]){0}, 1, NULL, 0);
    uint64_t graph = raw_new(fd, VG_CALL_cuGraphCreate, ctx, (uint64_t[]){0}, 1, NULL, 0);
    uint64_t stream = raw_new(fd, VG_CALL_cuStreamCreate, ctx, (uint64_t[]){0}, 1, NULL, 0);
    uint64_t event = raw_new(fd, VG_CALL_cuEventCreate, ctx, (uint64_t[]){0}, 1, NULL, 0);
    uint64_t node = raw_new(fd, VG_CALL_cuGraphAddEmptyNode, ctx, (uint64_t[]){graph, 0, 0}, 3, NULL, 0);
    uint64_t mem = raw_new(fd, VG_CALL_cuMemAlloc_v2, ctx, (uint64_t[]){1 << 16}, 1, NULL, 0);
    uint64_t mod = raw_new(fd, VG_CALL_cuModuleLoadData, ctx, NULL, 0, "rec-ptx", 8);
    uint64_t func = raw_new(fd, VG_CALL_cuModuleGetFunction, ctx, (uint64_t[]){mod}, 1, NULL, 0);
    const char *env = getenv("VGPU_FUZZ_SEED");
    unsigned seed = env ? (unsigned)strtoul(env, NULL, 0) : (unsigned)getpid();
    cr_log_info("seed %u (VGPU_FUZZ_SEED)", seed);
    srand(seed);
    const uint64_t pool[] = {0, 1, 2, 3, 8, 64, 4096, ctx, graph, stream, event, node, mem, mem + 4096, mem + 65535,
                             mod, func, UINT64_MAX, 1ull << 40, 0x7fffffff, 0x100000000ull, ctx + 1};
    const size_t npool = sizeof pool / sizeof pool[0];
    uint8_t bulk[512];
    unsigned replies = 0;
    for (int iter = 0; iter < 20000; iter++) {
        unsigned call = (unsigned)(rand() % VG_CALL_COUNT);
        /* Not the calls that end the session's context: the rest would only meet INVALID_CONTEXT. */
        if (call == VG_CALL_cuCtxDestroy_v2 || call == VG_CALL_cuDevicePrimaryCtxReset_v2 ||
            call == VG_CALL_cuDevicePrimaryCtxRelease_v2)
            continue;
        uint64_t args[12];
        size_t nargs = (size_t)(rand() % 13);
        for (size_t k = 0; k < nargs; k++)
            args[k] = rand() % 4 ? pool[rand() % npool] : ((uint64_t)rand() << 33) ^ (uint64_t)rand();
        size_t blen = (size_t)(rand() % 3 ? 0 : rand() % (int)sizeof bulk);
        for (size_t k = 0; k < blen; k++)
            bulk[k] = (uint8_t)(rand() % 4 ? 0 : rand());
        Vgpu__Call c = VGPU__CALL__INIT;
        c.call = call;
        c.ctx = rand() % 8 ? ctx : pool[rand() % npool];
        c.args = args;
        c.n_args = nargs;
        c.name = rand() % 2 ? "f" : "";
        cr_assert_eq(vg_frame_send(fd, VG_MSG_CALL, 0, (uint64_t)iter + 1000, &c.base, bulk, blen), 0);
        struct vg_frame_header h;
        ProtobufCMessage *m;
        cr_assert_eq(vg_frame_recv(fd, VG_FRAME_DEFAULT_MAX, &h, &m, NULL), 0, "no reply to call %u (%s), seed %u",
                     call, vg_call_name(call), seed);
        cr_assert_eq(h.type, VG_MSG_REPLY, "call %s, seed %u", vg_call_name(call), seed);
        protobuf_c_message_free_unpacked(m, NULL);
        cr_assert_eq(vg_io_discard(fd, h.bulk_len), 0);
        replies++;
    }
    close(fd);
    cr_log_info("%u random calls answered", replies);
    /* The stub's own session (another connection) is still served. */
    int n = 0;
    cr_assert_eq(cuDeviceGetCount(&n), CUDA_SUCCESS);
}

Test(recdrv, every_forwarded_call_has_a_case)
{
    char missing[8192] = "";
    for (unsigned id = 0; id < VG_CALL_COUNT; id++)
        if (!case_of(id)) {
            size_t len = strlen(missing);
            snprintf(missing + len, sizeof missing - len, " %s", vg_call_name(id));
        }
    cr_assert_str_empty(missing, "forwarded calls without a case:%s", missing);
}

/* ---- the accounting seam: every allocation path charges before the driver, refunds once ------- */

#define LIMIT (8u << 20)

static void setup_tenant(void)
{
    static char path[] = "/tmp/vgpu-recdrv-tenants.XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    const char text[] = "[t]\ntoken = recdrv-tenant-0001\nmemory = 8M\n";
    cr_assert_eq(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    tenants_file = path;
    setenv("VGPU_TOKEN", "recdrv-tenant-0001", 1);
    setup();
}

static void stop_tenant(void)
{
    stop_server();
    if (tenants_file)
        unlink(tenants_file);
}

/* An allocation path: make one object holding `bytes` (0 or the error), destroy it. */
struct path {
    const char *name, *driver_name;
    CUresult (*make)(uint64_t bytes, uint64_t *obj);
    CUresult (*destroy)(uint64_t obj);
};

static CUresult mk_alloc(uint64_t b, uint64_t *o) { return cuMemAlloc((CUdeviceptr *)o, b); }
static CUresult rm_alloc(uint64_t o) { return cuMemFree((CUdeviceptr)o); }
static CUresult mk_pitch(uint64_t b, uint64_t *o)
{
    size_t pitch;
    return cuMemAllocPitch((CUdeviceptr *)o, &pitch, 4096, b / 4096, 4); /* 4096-byte rows: no padding */
}
static CUresult mk_async(uint64_t b, uint64_t *o) { return cuMemAllocAsync((CUdeviceptr *)o, b, 0); }
static CUresult rm_async(uint64_t o)
{
    CUresult rc = cuMemFreeAsync((CUdeviceptr)o, 0);
    return rc == CUDA_SUCCESS ? cuCtxSynchronize() : rc;
}
static CUresult mk_pool(uint64_t b, uint64_t *o)
{
    return cuMemAllocFromPoolAsync((CUdeviceptr *)o, b, (CUmemoryPool)(uintptr_t)T.h[H_POOL], 0);
}
static CUresult mk_create(uint64_t b, uint64_t *o)
{
    CUmemAllocationProp p = {.type = CU_MEM_ALLOCATION_TYPE_PINNED,
                             .location = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = 0}};
    return cuMemCreate((CUmemGenericAllocationHandle *)o, b, &p, 0);
}
static CUresult rm_create(uint64_t o) { return cuMemRelease((CUmemGenericAllocationHandle)o); }
static CUresult mk_array(uint64_t b, uint64_t *o)
{
    CUDA_ARRAY_DESCRIPTOR d = {.Width = 1024, .Height = b / 4096, .Format = CU_AD_FORMAT_FLOAT, .NumChannels = 1};
    return cuArrayCreate((CUarray *)o, &d);
}
static CUresult rm_array(uint64_t o) { return cuArrayDestroy((CUarray)(uintptr_t)o); }
static CUresult mk_array3d(uint64_t b, uint64_t *o)
{
    CUDA_ARRAY3D_DESCRIPTOR d = {.Width = 1024, .Height = 16, .Depth = b / 65536, .Format = CU_AD_FORMAT_FLOAT,
                                 .NumChannels = 1};
    return cuArray3DCreate((CUarray *)o, &d);
}
static CUresult mk_mipmap(uint64_t b, uint64_t *o)
{
    CUDA_ARRAY3D_DESCRIPTOR d = {.Width = 1024, .Height = b / 4096, .Format = CU_AD_FORMAT_FLOAT, .NumChannels = 1};
    return cuMipmappedArrayCreate((CUmipmappedArray *)o, &d, 1);
}
static CUresult rm_mipmap(uint64_t o) { return cuMipmappedArrayDestroy((CUmipmappedArray)(uintptr_t)o); }
static CUresult mk_managed(uint64_t b, uint64_t *o) { return cuMemAllocManaged((CUdeviceptr *)o, b, CU_MEM_ATTACH_GLOBAL); }
static CUresult mk_module(uint64_t b, uint64_t *o)
{
    char ptx[256];
    snprintf(ptx, sizeof ptx, ".version 8.0\n.target sm_75\n.address_size 64\n.global .align 4 .b8 big[%llu];\n",
             (unsigned long long)b);
    return cuModuleLoadData((CUmodule *)o, ptx);
}
static CUresult rm_module(uint64_t o) { return cuModuleUnload((CUmodule)(uintptr_t)o); }

static const struct path paths[] = {
    {"cuMemAlloc", "cuMemAlloc_v2", mk_alloc, rm_alloc},
    {"cuMemAllocPitch", "cuMemAllocPitch_v2", mk_pitch, rm_alloc},
    {"cuMemAllocAsync", "cuMemAllocAsync", mk_async, rm_async},
    {"cuMemAllocFromPoolAsync", "cuMemAllocFromPoolAsync", mk_pool, rm_async},
    {"cuMemCreate", "cuMemCreate", mk_create, rm_create},
    {"cuArrayCreate", "cuArrayCreate_v2", mk_array, rm_array},
    {"cuArray3DCreate", "cuArray3DCreate_v2", mk_array3d, rm_array},
    {"cuMipmappedArrayCreate", "cuMipmappedArrayCreate", mk_mipmap, rm_mipmap},
    {"cuMemAllocManaged", "cuMemAllocManaged", mk_managed, rm_alloc},
    {"cuModuleLoadData (globals)", "cuModuleLoadData", mk_module, rm_module},
};

/* What is left of the tenant's limit, to 4 KiB: the largest allocation that succeeds. */
static uint64_t available(void)
{
    uint64_t lo = 0, hi = LIMIT;
    while (hi - lo > 4096) {
        uint64_t mid = (lo + hi) / 2 & ~(uint64_t)4095;
        CUdeviceptr p = 0;
        if (cuMemAlloc(&p, mid) == CUDA_SUCCESS) {
            cuMemFree(p);
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* Each path: over the tenant's limit it is refused before the driver sees it; within it, the
 * bytes are charged (the rest of the limit is then all that is left) and given back exactly once
 * when the object goes (as much as before is free again, and not more). setup's objects stay. */
Test(recdrv_accounting, every_allocation_path_charges_before_the_driver_and_refunds_once, .init = setup_tenant,
     .fini = stop_tenant)
{
    const uint64_t size = 4u << 20, avail = available();
    cr_assert_gt(avail, size, "only %llu bytes of the limit are left", (unsigned long long)avail);
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        const struct path *p = &paths[i];
        uint64_t filler = 0, obj = 0, probe = 0;
        /* Over the limit: refused, and the driver never asked. */
        cr_assert_eq(cuMemAlloc((CUdeviceptr *)&filler, avail - size / 2), CUDA_SUCCESS, "%s: filler", p->name);
        unsigned before = rec_seen(&T, p->driver_name);
        CUresult rc = p->make(size, &obj);
        if (rc != CUDA_ERROR_OUT_OF_MEMORY)
            fail(p->name, "over the limit it returned %d, not CUDA_ERROR_OUT_OF_MEMORY", (int)rc);
        if (rec_seen(&T, p->driver_name) != before)
            fail(p->name, "the driver was asked before the charge was refused");
        cr_assert_eq(cuMemFree((CUdeviceptr)filler), CUDA_SUCCESS);
        /* Within it: charged, so only the rest fits. */
        rc = p->make(size, &obj);
        if (rc != CUDA_SUCCESS) {
            fail(p->name, "within the limit it returned %d", (int)rc);
            continue;
        }
        if (cuMemAlloc((CUdeviceptr *)&probe, avail - size + 8192) != CUDA_ERROR_OUT_OF_MEMORY)
            fail(p->name, "its bytes were not charged");
        if (probe)
            cuMemFree((CUdeviceptr)probe), probe = 0;
        /* Gone: refunded once, the whole limit free again and no more. */
        if (p->destroy(obj) != CUDA_SUCCESS)
            fail(p->name, "destroying it failed");
        if (cuMemAlloc((CUdeviceptr *)&probe, avail) != CUDA_SUCCESS)
            fail(p->name, "its bytes were not given back");
        uint64_t one = 0;
        if (cuMemAlloc((CUdeviceptr *)&one, 8192) != CUDA_ERROR_OUT_OF_MEMORY)
            fail(p->name, "its bytes were given back twice");
        if (one)
            cuMemFree((CUdeviceptr)one);
        if (probe)
            cuMemFree((CUdeviceptr)probe);
    }
    cr_assert_eq(T.failures, 0, "%d failures: %s", T.failures, T.failed);
}

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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "calls.h"
#include "cuapi_handles.h"
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

/* ---- the server -------------------------------------------------------------------------------- */

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
        execl(VG_BUILD_DIR "/bin/gpu-server", "gpu-server", "--listen", "127.0.0.1:0", "--port-file", port_file,
              "--driver", driver, (char *)NULL);
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

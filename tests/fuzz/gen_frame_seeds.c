/* Writes the frame harness's seed inputs into a folder: byte streams a client sends gpu-server,
 * each a Hello and then Calls, encoded as the stub encodes them (vg_frame_put into one buffer,
 * bulk after each message), plus a few the server refuses (another protocol version, a second
 * Hello, server-to-client messages from the client). Built and run at build time; the output is not committed. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calls.h"
#include "frame.h"

struct stream {
    uint8_t *buf;
    size_t len, cap;
    uint64_t next_id;
};

static void put(struct stream *s, const void *p, size_t n)
{
    if (s->len + n > s->cap) {
        size_t cap = (s->len + n) * 2;
        uint8_t *grown = realloc(s->buf, cap);
        if (!grown) {
            perror("realloc");
            exit(1);
        }
        s->buf = grown;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
}

static void frame(struct stream *s, unsigned type, uint32_t flags, const ProtobufCMessage *msg,
                  const void *bulk, size_t bulk_len)
{
    size_t pb_len = msg ? protobuf_c_message_get_packed_size(msg) : 0;
    uint8_t *head = malloc(VG_FRAME_HEADER_SIZE + pb_len);
    if (!head) {
        perror("malloc");
        exit(1);
    }
    size_t n = vg_frame_put(type, flags, s->next_id++, msg, pb_len, bulk_len, head);
    put(s, head, n);
    free(head);
    if (bulk_len)
        put(s, bulk, bulk_len);
}

static void hello(struct stream *s, uint32_t version, const char *token)
{
    Vgpu__Hello h = VGPU__HELLO__INIT;
    h.protocol_version = version;
    h.host = "fuzz-host";
    h.pid = 4242;
    h.program = "gen_frame_seeds";
    h.token = (char *)token;
    h.timeout_ms = 60000;
    h.api_hash = VG_API_HASH;
    frame(s, VG_MSG_HELLO, 0, &h.base, NULL, 0);
}

/* One Call; pipelined calls carry NO_REPLY as the stub sends them. */
static void call(struct stream *s, unsigned id, uint64_t ctx, const uint64_t *args, size_t nargs,
                 const char *name, const void *bulk, size_t bulk_len)
{
    Vgpu__Call c = VGPU__CALL__INIT;
    c.call = id;
    c.ctx = ctx;
    c.args = (uint64_t *)args;
    c.n_args = nargs;
    if (name)
        c.name = (char *)name;
    frame(s, VG_MSG_CALL, vg_call_kind(id) == VG_PIPELINED ? VG_FLAG_NO_REPLY : 0, &c.base, bulk,
          bulk_len);
}

#define CALL(s, id, ctx, name, bulk, bulk_len, ...)                                             \
    call((s), VG_CALL_##id, (ctx), (const uint64_t[]){__VA_ARGS__},                             \
         sizeof((const uint64_t[]){__VA_ARGS__}) / sizeof(uint64_t), (name), (bulk), (bulk_len))
#define CALL0(s, id, ctx) call((s), VG_CALL_##id, (ctx), NULL, 0, NULL, NULL, 0)

/* Session-local handle ids as gpu-server hands them out: type << 56 | generation << 32 | slot+1. */
#define HANDLE(type, slot) (((uint64_t)(type) << 56) | ((uint64_t)1 << 32) | ((slot) + 1))
#define CTX HANDLE(1, 0)
#define MOD HANDLE(2, 0)
#define FUNC HANDLE(3, 0)
#define STREAM HANDLE(6, 0)
#define DPTR 0x700000000000ull

static const char kernel_ptx[] =
    ".version 7.5\n.target sm_75\n.address_size 64\n"
    ".visible .entry scale(.param .u64 p, .param .u32 n)\n{\n"
    "\t.reg .b32 %r<4>;\n\t.reg .b64 %rd<4>;\n\t.reg .pred %p<2>;\n"
    "\tld.param.u64 %rd1, [p];\n\tld.param.u32 %r1, [n];\n\tmov.u32 %r2, %tid.x;\n"
    "\tsetp.ge.u32 %p1, %r2, %r1;\n\t@%p1 bra DONE;\n\tmul.wide.u32 %rd2, %r2, 4;\n"
    "\tadd.s64 %rd3, %rd1, %rd2;\n\tst.global.u32 [%rd3], %r2;\nDONE:\n\tret;\n}\n";

static void write_seed(const char *dir, const char *name, struct stream *s)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(s->buf, 1, s->len, f) != s->len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    free(s->buf);
    *s = (struct stream){0};
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    struct stream s = {0};
    uint8_t data[256];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7);

    hello(&s, VG_PROTOCOL_VERSION, "");
    write_seed(dir, "hello", &s);

    hello(&s, VG_PROTOCOL_VERSION, "tenant-token-0123456789");
    CALL(&s, cuInit, 0, NULL, NULL, 0, 0);
    CALL0(&s, cuDeviceGetCount, 0);
    CALL(&s, cuDeviceGet, 0, NULL, NULL, 0, 0);
    CALL(&s, cuDeviceGetName, 0, NULL, NULL, 0, 256, 0);
    CALL(&s, cuDeviceGetAttribute, 0, NULL, NULL, 0, 75, 0);
    CALL(&s, cuDeviceTotalMem_v2, 0, NULL, NULL, 0, 0);
    write_seed(dir, "device_queries", &s);

    /* A program's life: context, memory, a module, a launch, copies back, teardown. */
    hello(&s, VG_PROTOCOL_VERSION, "");
    CALL(&s, cuInit, 0, NULL, NULL, 0, 0);
    CALL(&s, cuDevicePrimaryCtxRetain, 0, NULL, NULL, 0, 0);
    CALL(&s, cuMemAlloc_v2, CTX, NULL, NULL, 0, 1024);
    CALL(&s, cuMemcpyHtoD_v2, CTX, NULL, data, sizeof data, DPTR, 0);
    CALL(&s, cuModuleLoadData, CTX, "", kernel_ptx, sizeof kernel_ptx, 0);
    CALL(&s, cuModuleGetFunction, CTX, "scale", NULL, 0, MOD);
    CALL(&s, vgFuncGetParamLayout, CTX, NULL, NULL, 0, FUNC);
    uint8_t params[16] = {0};
    uint64_t p = DPTR;
    uint32_t n = 64;
    memcpy(params, &p, 8);
    memcpy(params + 8, &n, 4);
    CALL(&s, cuLaunchKernel, CTX, NULL, params, sizeof params, FUNC, 1, 1, 1, 64, 1, 1, 0, 0);
    CALL(&s, cuMemcpyDtoH_v2, CTX, NULL, NULL, 0, DPTR, sizeof data, 0);
    CALL0(&s, cuCtxSynchronize, CTX);
    CALL(&s, cuModuleUnload, CTX, NULL, NULL, 0, MOD);
    CALL(&s, cuMemFree_v2, CTX, NULL, NULL, 0, DPTR);
    CALL(&s, cuDevicePrimaryCtxRelease_v2, 0, NULL, NULL, 0, 0);
    write_seed(dir, "program", &s);

    /* Pipelined work on a stream, as a busy client sends it. */
    hello(&s, VG_PROTOCOL_VERSION, "");
    CALL(&s, cuStreamCreate, CTX, NULL, NULL, 0, 1);
    for (int i = 0; i < 8; i++) {
        CALL(&s, cuMemsetD32Async, CTX, NULL, NULL, 0, DPTR + 64 * (uint64_t)i, (uint64_t)i, 16, STREAM);
        CALL(&s, cuMemcpyHtoDAsync_v2, CTX, NULL, data, 32, DPTR + 32 * (uint64_t)i, STREAM);
    }
    CALL(&s, cuEventCreate, CTX, NULL, NULL, 0, 0);
    CALL(&s, cuStreamSynchronize, CTX, NULL, NULL, 0, STREAM);
    CALL(&s, cuStreamDestroy_v2, CTX, NULL, NULL, 0, STREAM);
    write_seed(dir, "pipelined", &s);

    /* A library and its kernels, names in the Call's string. */
    hello(&s, VG_PROTOCOL_VERSION, "");
    CALL(&s, cuLibraryLoadData, CTX, NULL, kernel_ptx, sizeof kernel_ptx, 0);
    CALL(&s, cuLibraryGetKernel, CTX, "scale", NULL, 0, HANDLE(4, 0));
    CALL(&s, cuLibraryGetGlobal, CTX, "missing", NULL, 0, HANDLE(4, 0));
    CALL(&s, cuLibraryEnumerateKernels, CTX, NULL, NULL, 0, 4, HANDLE(4, 0));
    write_seed(dir, "library", &s);

    /* Refused by the server: another protocol version in the Hello, a second Hello, a Reply. */
    hello(&s, VG_PROTOCOL_VERSION + 1, "");
    write_seed(dir, "hello_other_version", &s);

    hello(&s, VG_PROTOCOL_VERSION, "");
    hello(&s, VG_PROTOCOL_VERSION, "");
    write_seed(dir, "hello_twice", &s);

    hello(&s, VG_PROTOCOL_VERSION, "");
    Vgpu__Reply r = VGPU__REPLY__INIT;
    r.result = 1;
    frame(&s, VG_MSG_REPLY, 0, &r.base, NULL, 0);
    write_seed(dir, "reply_from_client", &s);

    /* Server-to-client messages from a client. */
    hello(&s, VG_PROTOCOL_VERSION, "");
    Vgpu__Output o = VGPU__OUTPUT__INIT;
    o.fd = 1;
    frame(&s, VG_MSG_OUTPUT, 0, &o.base, "printed\n", 8);
    write_seed(dir, "output_from_client", &s);

    hello(&s, VG_PROTOCOL_VERSION, "");
    Vgpu__Heartbeat hb = VGPU__HEARTBEAT__INIT;
    frame(&s, VG_MSG_HEARTBEAT, 0, &hb.base, NULL, 0);
    write_seed(dir, "heartbeat_from_client", &s);

    /* A Call before any Hello, and an unknown call id. */
    CALL(&s, cuInit, 0, NULL, NULL, 0, 0);
    write_seed(dir, "call_first", &s);

    hello(&s, VG_PROTOCOL_VERSION, "");
    call(&s, 100000, 0, (const uint64_t[]){1, 2, 3}, 3, "x", NULL, 0);
    write_seed(dir, "unknown_call", &s);
    return 0;
}

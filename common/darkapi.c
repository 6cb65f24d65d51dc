/* cuGetExportTable: the driver's undocumented export tables, as CUDA 13's runtime uses them.
 *
 * The CUDA runtime (static or shared libcudart) reaches parts of the driver through tables of
 * function pointers looked up by UUID. Their layouts are not documented; what is here was
 * observed (VGPU_LOG=debug logs every lookup and every slot call) and cross-checked against
 * public re-implementations of libcuda.so.1 (ZLUDA's dark_api and others). Slot 0 of most tables
 * holds the table's size in bytes, which the runtime reads before using later slots.
 *
 * Every slot is implemented with the public cu* API of the library this file is linked into
 * (vgapi goes into both the client stub and the emulated driver), so one implementation serves
 * both. Slots whose meaning is unknown log their arguments once and return
 * CUDA_ERROR_NOT_SUPPORTED rather than leaving a NULL pointer for the runtime to jump to. */
#include <cuda.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "darkapi.h"
#include "log.h"

/* ---- MD2 and HMAC-MD2 (RFC 1319, RFC 2104) ------------------------------------------------- */

/* RFC 1319's substitution table: a permutation of 0..255 built from the digits of pi. */
static const uint8_t md2_pi_subst[256] = {
    41, 46, 67, 201, 162, 216, 124, 1, 61, 54, 84, 161, 236, 240, 6, 19,
    98, 167, 5, 243, 192, 199, 115, 140, 152, 147, 43, 217, 188, 76, 130, 202,
    30, 155, 87, 60, 253, 212, 224, 22, 103, 66, 111, 24, 138, 23, 229, 18,
    190, 78, 196, 214, 218, 158, 222, 73, 160, 251, 245, 142, 187, 47, 238, 122,
    169, 104, 121, 145, 21, 178, 7, 63, 148, 194, 16, 137, 11, 34, 95, 33,
    128, 127, 93, 154, 90, 144, 50, 39, 53, 62, 204, 231, 191, 247, 151, 3,
    255, 25, 48, 179, 72, 165, 181, 209, 215, 94, 146, 42, 172, 86, 170, 198,
    79, 184, 56, 210, 150, 164, 125, 182, 118, 252, 107, 226, 156, 116, 4, 241,
    69, 157, 112, 89, 100, 113, 135, 32, 134, 91, 207, 101, 230, 45, 168, 2,
    27, 96, 37, 173, 174, 176, 185, 246, 28, 70, 97, 105, 52, 64, 126, 15,
    85, 71, 163, 35, 221, 81, 175, 58, 195, 92, 249, 206, 186, 197, 234, 38,
    44, 83, 13, 110, 133, 40, 132, 9, 211, 223, 205, 244, 65, 129, 77, 82,
    106, 220, 55, 200, 108, 193, 171, 250, 36, 225, 123, 8, 12, 189, 177, 74,
    120, 136, 149, 139, 227, 99, 232, 109, 233, 203, 213, 254, 59, 0, 29, 57,
    242, 239, 183, 14, 102, 88, 208, 228, 166, 119, 114, 248, 235, 117, 75, 10,
    49, 68, 80, 180, 143, 237, 31, 26, 219, 153, 141, 51, 159, 17, 131, 20,
};

static void md2_block(struct vg_md2 *md, const uint8_t block[16])
{
    uint8_t last = md->checksum[15];
    for (int i = 0; i < 16; i++) {
        md->state[16 + i] = block[i];
        md->state[32 + i] = (uint8_t)(md->state[i] ^ block[i]);
        md->checksum[i] ^= md2_pi_subst[block[i] ^ last];
        last = md->checksum[i];
    }
    uint8_t t = 0;
    for (int round = 0; round < 18; round++) {
        for (int k = 0; k < 48; k++)
            t = md->state[k] ^= md2_pi_subst[t];
        t = (uint8_t)(t + round);
    }
}

void vg_md2_init(struct vg_md2 *md)
{
    memset(md, 0, sizeof *md);
}

void vg_md2_update(struct vg_md2 *md, const void *data, size_t len)
{
    const uint8_t *bytes = data;
    while (len > 0) {
        size_t take = 16 - md->used < len ? 16 - md->used : len;
        memcpy(md->block + md->used, bytes, take);
        md->used += (unsigned)take;
        bytes += take;
        len -= take;
        if (md->used == 16) {
            md2_block(md, md->block);
            md->used = 0;
        }
    }
}

void vg_md2_final(struct vg_md2 *md, uint8_t digest[16])
{
    uint8_t pad[16];
    uint8_t pad_len = (uint8_t)(16 - md->used); /* 1..16 bytes, each holding the count */
    memset(pad, pad_len, sizeof pad);
    vg_md2_update(md, pad, pad_len);
    uint8_t checksum[16];
    memcpy(checksum, md->checksum, sizeof checksum);
    md2_block(md, checksum);
    memcpy(digest, md->state, 16);
}

void vg_hmac_md2_init(struct vg_hmac_md2 *mac, const uint8_t key[16])
{
    uint8_t ipad[16];
    memcpy(mac->key, key, 16);
    for (int i = 0; i < 16; i++)
        ipad[i] = (uint8_t)(key[i] ^ 0x36);
    vg_md2_init(&mac->inner);
    vg_md2_update(&mac->inner, ipad, sizeof ipad);
}

void vg_hmac_md2_update(struct vg_hmac_md2 *mac, const void *data, size_t len)
{
    vg_md2_update(&mac->inner, data, len);
}

void vg_hmac_md2_final(struct vg_hmac_md2 *mac, uint8_t digest[16])
{
    uint8_t inner[16], opad[16];
    vg_md2_final(&mac->inner, inner);
    for (int i = 0; i < 16; i++)
        opad[i] = (uint8_t)(mac->key[i] ^ 0x5c);
    struct vg_md2 outer;
    vg_md2_init(&outer);
    vg_md2_update(&outer, opad, sizeof opad);
    vg_md2_update(&outer, inner, sizeof inner);
    vg_md2_final(&outer, digest);
}

/* ---- unknown slots ------------------------------------------------------------------------ */

/* A stub per (table, slot) so the log names exactly which slot the runtime wanted. */
#define DARK_UNKNOWN_SLOT(table, n)                                                                  \
    static uintptr_t unknown_##table##_##n(uintptr_t a, uintptr_t b, uintptr_t c, uintptr_t d,     \
                                           uintptr_t e, uintptr_t f)                                \
    {                                                                                                \
        static int once;                                                                             \
        if (!__atomic_exchange_n(&once, 1, __ATOMIC_RELAXED))                                        \
            vg_warn("export table %s slot %d is not supported (args %#lx %#lx %#lx %#lx %#lx %#lx)", \
                    #table, n, (unsigned long)a, (unsigned long)b, (unsigned long)c,                 \
                    (unsigned long)d, (unsigned long)e, (unsigned long)f);                          \
        return CUDA_ERROR_NOT_SUPPORTED;                                                             \
    }
#define U(table, n) ((const void *)unknown_##table##_##n)
#define SIZE_OF(slots) ((const void *)(uintptr_t)((slots) * sizeof(void *)))

/* ---- 6bd5fb6c-5bf4-e74a-8987-d93912fd9df9: runtime interface ------------------------------- */

/* Slot 1 (and 6, 8 with extra arguments): load the fatbin a __fatBinC_Wrapper_t points to.
 * CUDA 13's runtime registers kernels through cuLibraryLoadData instead; kept for older ones. */
static CUresult cudart_load_wrapper(CUmodule *module, const void *fatbinc_wrapper)
{
    vg_debug("export table cudart slot 1 (%p, %p)", (void *)module, fatbinc_wrapper);
    if (!module || !fatbinc_wrapper)
        return CUDA_ERROR_INVALID_VALUE;
    return cuModuleLoadFatBinary(module, fatbinc_wrapper);
}

static CUresult cudart_load_wrapper_ext1(CUmodule *module, const void *fatbinc_wrapper, void *arg3,
                                         void *arg4, unsigned arg5)
{
    (void)arg3, (void)arg4, (void)arg5;
    return cudart_load_wrapper(module, fatbinc_wrapper);
}

static CUresult cudart_load_wrapper_ext2(const void *fatbinc_wrapper, CUmodule *module, void *arg3,
                                         void *arg4, unsigned arg5)
{
    (void)arg3, (void)arg4, (void)arg5;
    return cudart_load_wrapper(module, fatbinc_wrapper);
}

/* Slot 2: the runtime's device context, called once per device it initializes, with
 * (CUcontext *, CUdevice). The runtime keeps the context for the life of the process, which is
 * a primary-context retain. */
static CUresult cudart_primary_context(CUcontext *pctx, CUdevice dev)
{
    vg_debug("export table cudart slot 2 (%p, %d)", (void *)pctx, dev);
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    return cuDevicePrimaryCtxRetain(pctx, dev);
}

DARK_UNKNOWN_SLOT(cudart, 3)
DARK_UNKNOWN_SLOT(cudart, 4)
DARK_UNKNOWN_SLOT(cudart, 5)
DARK_UNKNOWN_SLOT(cudart, 7)
DARK_UNKNOWN_SLOT(cudart, 9)
DARK_UNKNOWN_SLOT(cudart, 10)
DARK_UNKNOWN_SLOT(cudart, 11)
DARK_UNKNOWN_SLOT(cudart, 12)

static const void *const cudart_table[13] = {
    SIZE_OF(13),
    (const void *)cudart_load_wrapper,
    (const void *)cudart_primary_context,
    U(cudart, 3), U(cudart, 4), U(cudart, 5),
    (const void *)cudart_load_wrapper_ext1,
    U(cudart, 7),
    (const void *)cudart_load_wrapper_ext2,
    U(cudart, 9), U(cudart, 10), U(cudart, 11), U(cudart, 12),
};

/* ---- a094798c-2e74-2e74-93f2-0800200c0a66: tools runtime callback hooks -------------------- */

/* Slots 2 and 6 hand the runtime two zeroed buffers (pointer and element count) in which tools
 * would register callbacks; all zeros means "no tool attached". The runtime writes into them,
 * so they are process-wide and never freed, as a driver's would be. */
static uint32_t hooks_buffer_a[1024];
static uint32_t hooks_buffer_b[14];

static void hooks_buffer_2(void **ptr, size_t *count)
{
    vg_debug("export table hooks slot 2 (%p, %p)", (void *)ptr, (void *)count);
    if (ptr)
        *ptr = hooks_buffer_a;
    if (count)
        *count = sizeof hooks_buffer_a / sizeof hooks_buffer_a[0];
}

static void hooks_buffer_6(void **ptr, size_t *count)
{
    vg_debug("export table hooks slot 6 (%p, %p)", (void *)ptr, (void *)count);
    if (ptr)
        *ptr = hooks_buffer_b;
    if (count)
        *count = sizeof hooks_buffer_b / sizeof hooks_buffer_b[0];
}

DARK_UNKNOWN_SLOT(hooks, 1)
DARK_UNKNOWN_SLOT(hooks, 3)
DARK_UNKNOWN_SLOT(hooks, 4)
DARK_UNKNOWN_SLOT(hooks, 5)

static const void *const hooks_table[7] = {
    SIZE_OF(7), U(hooks, 1), (const void *)hooks_buffer_2, U(hooks, 3), U(hooks, 4), U(hooks, 5),
    (const void *)hooks_buffer_6,
};

/* ---- 42d85a81-23f6-cb47-8298-f6e78a3aecdc: tools thread-local state ------------------------ */

/* Slot 2: the calling thread's current context (libraries such as cuBLASLt use it). */
static CUresult tls_current_context(CUcontext *pctx)
{
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    return cuCtxGetCurrent(pctx);
}

DARK_UNKNOWN_SLOT(tls, 1)
DARK_UNKNOWN_SLOT(tls, 3)

static const void *const tls_table[4] = {
    SIZE_OF(4), U(tls, 1), (const void *)tls_current_context, U(tls, 3),
};

/* ---- c693336e-1121-df11-a8c3-68f355d89593: context-local storage --------------------------- */

/* The runtime attaches its per-context state to driver contexts: put(ctx, key, value, dtor),
 * delete(ctx, key), get(&value, ctx, key). A NULL ctx means the calling thread's current one.
 * This table has no size header. The destructor would run when the context is destroyed; the
 * drivers do not report that to this module yet, so entries live until the process exits. */
struct cls_entry {
    CUcontext ctx;
    const void *key;
    void *value;
    void *dtor;
    struct cls_entry *next;
};

static pthread_mutex_t cls_lock = PTHREAD_MUTEX_INITIALIZER; /* guards cls_head */
static struct cls_entry *cls_head;

static CUresult cls_resolve(CUcontext *ctx)
{
    if (*ctx)
        return CUDA_SUCCESS;
    CUresult rc = cuCtxGetCurrent(ctx);
    if (rc != CUDA_SUCCESS)
        return rc;
    return *ctx ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
}

static CUresult cls_put(CUcontext ctx, const void *key, void *value, void *dtor)
{
    vg_debug("export table cls put(%p, %p, %p, %p)", (void *)ctx, key, value, dtor);
    CUresult rc = cls_resolve(&ctx);
    if (rc != CUDA_SUCCESS)
        return rc;
    pthread_mutex_lock(&cls_lock);
    struct cls_entry *e;
    for (e = cls_head; e; e = e->next)
        if (e->ctx == ctx && e->key == key)
            break;
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e) {
            pthread_mutex_unlock(&cls_lock);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        e->ctx = ctx;
        e->key = key;
        e->next = cls_head;
        cls_head = e;
    }
    e->value = value;
    e->dtor = dtor;
    pthread_mutex_unlock(&cls_lock);
    return CUDA_SUCCESS;
}

static CUresult cls_delete(CUcontext ctx, const void *key)
{
    vg_debug("export table cls delete(%p, %p)", (void *)ctx, key);
    CUresult rc = cls_resolve(&ctx);
    if (rc != CUDA_SUCCESS)
        return rc;
    pthread_mutex_lock(&cls_lock);
    for (struct cls_entry **link = &cls_head; *link; link = &(*link)->next) {
        if ((*link)->ctx == ctx && (*link)->key == key) {
            struct cls_entry *dead = *link;
            *link = dead->next;
            free(dead);
            break;
        }
    }
    pthread_mutex_unlock(&cls_lock);
    return CUDA_SUCCESS;
}

/* Not found is CUDA_ERROR_INVALID_HANDLE: the runtime then creates its state and puts it. */
static CUresult cls_get(void **value, CUcontext ctx, const void *key)
{
    vg_debug("export table cls get(%p, %p, %p)", (void *)value, (void *)ctx, key);
    if (!value)
        return CUDA_ERROR_INVALID_VALUE;
    *value = NULL;
    CUresult rc = cls_resolve(&ctx);
    if (rc != CUDA_SUCCESS)
        return rc;
    rc = CUDA_ERROR_INVALID_HANDLE;
    pthread_mutex_lock(&cls_lock);
    for (struct cls_entry *e = cls_head; e; e = e->next) {
        if (e->ctx == ctx && e->key == key) {
            *value = e->value;
            rc = CUDA_SUCCESS;
            break;
        }
    }
    pthread_mutex_unlock(&cls_lock);
    return rc;
}

DARK_UNKNOWN_SLOT(cls, 3)

static const void *const cls_table[4] = {
    (const void *)cls_put, (const void *)cls_delete, (const void *)cls_get, U(cls, 3),
};

/* ---- 263e8860-7cd2-6143-92f6-bbd5006dfa7e: context checks ----------------------------------- */

/* Slot 2 reports flags and details about a context, slot 3 a global flag word; zero in both
 * means "nothing special" (what a plain driver context reports). */
static CUresult checks_context(CUcontext ctx, uint32_t *flags, const void **detail)
{
    vg_debug("export table checks slot 2 (%p)", (void *)ctx);
    if (flags)
        *flags = 0;
    if (detail)
        *detail = NULL;
    return CUDA_SUCCESS;
}

static uint32_t checks_global(void)
{
    return 0;
}

DARK_UNKNOWN_SLOT(checks, 1)

static const void *const checks_table[4] = {
    SIZE_OF(4), U(checks, 1), (const void *)checks_context, (const void *)checks_global,
};

/* ---- d4082055-bde6-704b-8d34-ba123c66e1f2: integrity check ---------------------------------- */

static CUresult integrity_check(uint32_t version, uint64_t unix_seconds, uint64_t result[2]);

static const void *const integrity_table[3] = {
    SIZE_OF(3), (const void *)integrity_check, NULL,
};

/* Slot 1: the runtime refuses a driver (cudaErrorNotSupported from its first call) unless this
 * returns the expected 16 bytes: HMAC-MD2 (RFC 2104 over RFC 1319) keyed with a fixed 16-byte
 * key, over a record of (driver version, the caller's version argument, pid, thread id, the
 * addresses of the runtime-interface table, this table and this function, the caller's time
 * argument), then each device's UUID and PCI domain/bus/device. Versions ending in 0 or 1 get
 * fixed answers. The layout is as observed by ZLUDA's and others' public implementations. */
static CUresult integrity_check(uint32_t version, uint64_t unix_seconds, uint64_t result[2])
{
    static const uint8_t key[16] = {0x14, 0x6a, 0xdd, 0xae, 0x53, 0xa9, 0xa7, 0x52,
                                    0xaa, 0x08, 0x41, 0x36, 0x0b, 0xf5, 0x5a, 0x9f};
    vg_debug("export table integrity slot 1 (version %u, time %llu)", version,
             (unsigned long long)unix_seconds);
    if (!result)
        return CUDA_ERROR_INVALID_VALUE;
    if (version % 10 == 0 || version % 10 == 1) {
        result[0] = version % 10 == 0 ? 0x3341181c03cb675cULL : 0x1841181c03cb675cULL;
        result[1] = 0x8ed383aa1f4cd1e8ULL;
        return CUDA_SUCCESS;
    }

    int driver_version = 0;
    CUresult rc = cuDriverGetVersion(&driver_version);
    if (rc != CUDA_SUCCESS)
        return rc;
    struct {
        uint32_t driver_version, version, pid, tid;
        const void *cudart_table, *integrity_table, *function;
        uint64_t unix_seconds;
    } record;
    memset(&record, 0, sizeof record);
    record.driver_version = (uint32_t)driver_version;
    record.version = version;
    record.pid = (uint32_t)getpid();
    record.tid = (uint32_t)(uintptr_t)pthread_self();
    record.cudart_table = cudart_table;
    record.integrity_table = integrity_table;
    record.function = integrity_table[1];
    record.unix_seconds = unix_seconds;

    struct vg_hmac_md2 mac;
    vg_hmac_md2_init(&mac, key);
    vg_hmac_md2_update(&mac, &record, sizeof record);

    int count = 0;
    rc = cuDeviceGetCount(&count);
    if (rc != CUDA_SUCCESS)
        return rc;
    for (int ordinal = 0; ordinal < count; ordinal++) {
        struct {
            CUuuid uuid;
            int32_t pci_domain, pci_bus, pci_device;
        } device;
        memset(&device, 0, sizeof device);
        CUdevice dev;
        if ((rc = cuDeviceGet(&dev, ordinal)) != CUDA_SUCCESS ||
            (rc = cuDeviceGetUuid_v2(&device.uuid, dev)) != CUDA_SUCCESS ||
            (rc = cuDeviceGetAttribute(&device.pci_domain, CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, dev)) != CUDA_SUCCESS ||
            (rc = cuDeviceGetAttribute(&device.pci_bus, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, dev)) != CUDA_SUCCESS ||
            (rc = cuDeviceGetAttribute(&device.pci_device, CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, dev)) != CUDA_SUCCESS)
            return rc;
        vg_hmac_md2_update(&mac, &device, sizeof device);
    }
    uint8_t digest[16];
    vg_hmac_md2_final(&mac, digest);
    memcpy(result, digest, sizeof digest);
    return CUDA_SUCCESS;
}

/* ---- lookup --------------------------------------------------------------------------------- */

struct dark_table {
    const char *name;
    uint8_t uuid[16];
    const void *const *slots; /* NULL: known, deliberately refused */
};

static const struct dark_table dark_tables[] = {
    /* Asked for before cuInit; CUDA 13.0 proceeds normally without it. */
    {"runtime-requirements", {0xf8, 0xcf, 0xf9, 0x51, 0x21, 0x46, 0x8b, 0x4e, 0xb9, 0xe2, 0xfb, 0x46, 0x9e, 0x7c, 0x0d, 0xd9}, NULL},
    {"cudart", {0x6b, 0xd5, 0xfb, 0x6c, 0x5b, 0xf4, 0xe7, 0x4a, 0x89, 0x87, 0xd9, 0x39, 0x12, 0xfd, 0x9d, 0xf9}, cudart_table},
    {"hooks", {0xa0, 0x94, 0x79, 0x8c, 0x2e, 0x74, 0x2e, 0x74, 0x93, 0xf2, 0x08, 0x00, 0x20, 0x0c, 0x0a, 0x66}, hooks_table},
    {"tls", {0x42, 0xd8, 0x5a, 0x81, 0x23, 0xf6, 0xcb, 0x47, 0x82, 0x98, 0xf6, 0xe7, 0x8a, 0x3a, 0xec, 0xdc}, tls_table},
    {"cls", {0xc6, 0x93, 0x33, 0x6e, 0x11, 0x21, 0xdf, 0x11, 0xa8, 0xc3, 0x68, 0xf3, 0x55, 0xd8, 0x95, 0x93}, cls_table},
    {"checks", {0x26, 0x3e, 0x88, 0x60, 0x7c, 0xd2, 0x61, 0x43, 0x92, 0xf6, 0xbb, 0xd5, 0x00, 0x6d, 0xfa, 0x7e}, checks_table},
    {"integrity", {0xd4, 0x08, 0x20, 0x55, 0xbd, 0xe6, 0x70, 0x4b, 0x8d, 0x34, 0xba, 0x12, 0x3c, 0x66, 0xe1, 0xf2}, integrity_table},
};

/* Unknown UUIDs are logged once each at info level; a few distinct ones suffice to remember. */
#define DARK_MAX_REPORTED 32
static pthread_mutex_t reported_lock = PTHREAD_MUTEX_INITIALIZER; /* guards reported* */
static uint8_t reported[DARK_MAX_REPORTED][16];
static unsigned reported_count;

static int first_report(const uint8_t *uuid)
{
    int first = 1;
    pthread_mutex_lock(&reported_lock);
    for (unsigned i = 0; i < reported_count && first; i++)
        if (memcmp(reported[i], uuid, 16) == 0)
            first = 0;
    if (first && reported_count < DARK_MAX_REPORTED)
        memcpy(reported[reported_count++], uuid, 16);
    pthread_mutex_unlock(&reported_lock);
    return first;
}

CUresult CUDAAPI cuGetExportTable(const void **ppExportTable, const CUuuid *pExportTableId)
{
    if (!ppExportTable || !pExportTableId)
        return CUDA_ERROR_INVALID_VALUE;
    *ppExportTable = NULL;
    const uint8_t *uuid = (const uint8_t *)pExportTableId->bytes;
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", uuid[i]);

    for (size_t i = 0; i < sizeof dark_tables / sizeof dark_tables[0]; i++) {
        if (memcmp(dark_tables[i].uuid, uuid, 16) != 0)
            continue;
        if (!dark_tables[i].slots) {
            vg_debug("cuGetExportTable(%s): %s table refused", hex, dark_tables[i].name);
            return CUDA_ERROR_NOT_SUPPORTED;
        }
        vg_debug("cuGetExportTable(%s): %s table", hex, dark_tables[i].name);
        *ppExportTable = (const void *)dark_tables[i].slots;
        return CUDA_SUCCESS;
    }
    if (first_report(uuid))
        vg_info("cuGetExportTable(%s): unknown export table; returning CUDA_ERROR_NOT_SUPPORTED", hex);
    return CUDA_ERROR_NOT_SUPPORTED;
}

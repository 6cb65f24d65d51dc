/* cuGetProcAddress (CUDA 11.3, four arguments) and cuGetProcAddress_v2 (CUDA 12.0, with the
 * query status), driven by the table generated from cudaTypedefs.h.
 *
 * Linked into both libcuda.so.1 builds through vgapi: every address in the table resolves at
 * link time to that library's strong implementation or to the generated weak fallback, so the
 * same lookup serves the client stub and the emulated driver. */
#include "procaddr.h"

#include <cuda.h>
#include <string.h>

#include "log.h"

/* cuda.h renames cuGetProcAddress to cuGetProcAddress_v2; both ABIs are exported here. */
#undef cuGetProcAddress
CUresult CUDAAPI cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags);

/* The newest ABI this table knows; a caller asking for a newer CUDA than the driver reports
 * gets CUDA_ERROR_INVALID_VALUE, as the driver API documents. */
#define VG_PROCADDR_MAX_VERSION CUDA_VERSION

const struct vg_procaddr_entry *vg_procaddr_lookup(const char *symbol, int cuda_version, int per_thread,
                                                   int *status)
{
    unsigned lo = 0, hi = vg_procaddr_count;
    while (lo < hi) { /* first entry whose base is >= symbol */
        unsigned mid = lo + (hi - lo) / 2;
        if (strcmp(vg_procaddr_table[mid].base, symbol) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    const struct vg_procaddr_entry *legacy = NULL, *per_thread_fn = NULL;
    int known = 0;
    for (unsigned i = lo; i < vg_procaddr_count && strcmp(vg_procaddr_table[i].base, symbol) == 0; i++) {
        const struct vg_procaddr_entry *e = &vg_procaddr_table[i];
        known = 1;
        if (e->version > cuda_version)
            continue;
        /* Entries are in increasing version order, so the last match is the newest ABI. */
        if (e->kind == VG_PROCADDR_PER_THREAD)
            per_thread_fn = e;
        else
            legacy = e;
    }
    const struct vg_procaddr_entry *pick = per_thread && per_thread_fn ? per_thread_fn : legacy;
    if (!pick) {
        *status = known ? VG_PROCADDR_TOO_OLD : VG_PROCADDR_NO_SYMBOL;
        return NULL;
    }
    *status = VG_PROCADDR_FOUND;
    return pick;
}

/* Shared body of both ABIs. Contract (driver API reference, cuGetProcAddress): a symbol that
 * does not exist or needs a newer version is CUDA_SUCCESS with *pfn = NULL and the reason in
 * *symbolStatus; bad arguments are CUDA_ERROR_INVALID_VALUE. */
static CUresult get_proc_address(const char *symbol, void **pfn, int cuda_version, cuuint64_t flags,
                                 CUdriverProcAddressQueryResult *symbol_status)
{
    const cuuint64_t known_flags = CU_GET_PROC_ADDRESS_LEGACY_STREAM | CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM;
    if (!symbol || !pfn || (flags & ~known_flags) || cuda_version <= 0 ||
        cuda_version > VG_PROCADDR_MAX_VERSION) {
        vg_debug("cuGetProcAddress(%s, %d, %#llx): invalid value", symbol ? symbol : "(null)",
                 cuda_version, (unsigned long long)flags);
        if (pfn)
            *pfn = NULL;
        return CUDA_ERROR_INVALID_VALUE;
    }
    /* DEFAULT means legacy here: only the caller's compiler knows whether it was built for
     * per-thread default streams, and cuda.h's inline wrapper then passes the flag itself. */
    int per_thread = (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) != 0;
    int status;
    const struct vg_procaddr_entry *entry = vg_procaddr_lookup(symbol, cuda_version, per_thread, &status);
    *pfn = entry ? (void *)entry->fn : NULL;
    if (symbol_status)
        *symbol_status = (CUdriverProcAddressQueryResult)status;
    vg_debug("cuGetProcAddress(%s, %d, %#llx) -> %s", symbol, cuda_version, (unsigned long long)flags,
             entry ? entry->symbol : status == VG_PROCADDR_TOO_OLD ? "(version not sufficient)" : "(not found)");
    return CUDA_SUCCESS;
}

/* The CUDA 11.3 ABI reported a missing or too new symbol as CUDA_ERROR_NOT_FOUND (its reference
 * page says so); callers of that ABI test the return code, not *pfn. */
CUresult CUDAAPI cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags)
{
    CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SUCCESS;
    CUresult rc = get_proc_address(symbol, pfn, cudaVersion, flags, &status);
    if (rc == CUDA_SUCCESS && status != CU_GET_PROC_ADDRESS_SUCCESS)
        return CUDA_ERROR_NOT_FOUND;
    return rc;
}

CUresult CUDAAPI cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags,
                                     CUdriverProcAddressQueryResult *symbolStatus)
{
    return get_proc_address(symbol, pfn, cudaVersion, flags, symbolStatus);
}

/* vg_procaddr: the versioned entry-point table behind cuGetProcAddress.
 *
 * The table is generated at build time from cudaTypedefs.h (common/gen_cuapi.py writes
 * cuapi_procaddr.c); this header is all that the generated file and common/procaddr.c share,
 * so it must not include cuda.h (the generated file declares every symbol as int f(void)). */
#ifndef VG_PROCADDR_H
#define VG_PROCADDR_H

enum vg_procaddr_kind {
    VG_PROCADDR_LEGACY = 0,     /* the plain symbol: legacy default stream */
    VG_PROCADDR_PER_THREAD = 1, /* the _ptsz/_ptds symbol: per-thread default stream */
};

/* One ABI version of one entry point: base name "cuMemAlloc", the CUDA version that introduced
 * this ABI (3020), and the address of the symbol implementing it (cuMemAlloc_v2). */
struct vg_procaddr_entry {
    const char *base;
    const char *symbol; /* for logs: "cuMemAlloc_v2" */
    int version;
    int kind;
    void (*fn)(void);
};

/* Sorted by (base, version, kind) with strcmp order on base; never modified. */
extern const struct vg_procaddr_entry vg_procaddr_table[];
extern const unsigned vg_procaddr_count;

/* Status values match CUdriverProcAddressQueryResult. */
enum { VG_PROCADDR_FOUND = 0, VG_PROCADDR_NO_SYMBOL = 1, VG_PROCADDR_TOO_OLD = 2 };

/* Looks up base name `symbol` for a caller built against `cuda_version`, choosing the
 * per-thread variant where `per_thread` is set and one exists at that version (else the legacy
 * one). Returns the entry (NULL unless *status is VG_PROCADDR_FOUND). Pure: no locks, callable
 * from any thread. */
const struct vg_procaddr_entry *vg_procaddr_lookup(const char *symbol, int cuda_version, int per_thread,
                                                   int *status);

#endif

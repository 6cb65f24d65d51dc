/* The one list of forwarded driver calls, shared by the stub (client/) and gpu-server (server/).
 *
 * VG_CALLS(X) expands X(ID, kind) for each call. The wire id of a call is its position in the list
 * (enum vg_call below): append new calls at the end of the list, never reorder, and bump
 * VG_PROTOCOL_VERSION when an existing call's arguments change.
 *
 * kind:
 *   VG_REPLY      the client waits for the Reply.
 *   VG_PIPELINED  sent with VG_FLAG_NO_REPLY; the caller cannot observe the result before it
 *                 synchronizes, so the server records the first failure and reports it later.
 *   VG_SYNCING    the client waits for the Reply; a failure recorded from earlier pipelined calls
 *                 is reported here (and cleared) when the call itself succeeded.
 *
 * The argument layout of each call (Call.args, Reply.outs, bulk) is documented in README.md. */
#ifndef VG_CALLS_H
#define VG_CALLS_H

#define VG_REPLY 0
#define VG_PIPELINED 1
#define VG_SYNCING 2

#define VG_CALLS(X)                                   \
    X(INIT, VG_REPLY)                                 \
    X(DRIVER_GET_VERSION, VG_REPLY)                   \
    X(DEVICE_GET, VG_REPLY)                           \
    X(DEVICE_GET_COUNT, VG_REPLY)                     \
    X(DEVICE_GET_NAME, VG_REPLY)                      \
    X(DEVICE_GET_ATTRIBUTE, VG_REPLY)                 \
    X(DEVICE_TOTAL_MEM, VG_REPLY)                     \
    X(DEVICE_GET_UUID, VG_REPLY)                      \
    X(PRIMARY_CTX_RETAIN, VG_REPLY)                   \
    X(PRIMARY_CTX_RELEASE, VG_REPLY)                  \
    X(PRIMARY_CTX_RESET, VG_REPLY)                    \
    X(PRIMARY_CTX_GET_STATE, VG_REPLY)                \
    X(PRIMARY_CTX_SET_FLAGS, VG_REPLY)                \
    X(CTX_CREATE, VG_REPLY)                           \
    X(CTX_DESTROY, VG_SYNCING)                        \
    X(CTX_GET_DEVICE, VG_REPLY)                       \
    X(CTX_SYNCHRONIZE, VG_SYNCING)                    \
    X(CTX_GET_API_VERSION, VG_REPLY)                  \
    X(CTX_GET_FLAGS, VG_REPLY)                        \
    X(CTX_SET_LIMIT, VG_REPLY)                        \
    X(CTX_GET_LIMIT, VG_REPLY)                        \
    X(CTX_GET_STREAM_PRIORITY_RANGE, VG_REPLY)        \
    X(MEM_ALLOC, VG_REPLY)                            \
    X(MEM_FREE, VG_SYNCING)                           \
    X(MEM_GET_INFO, VG_REPLY)                         \
    X(MEM_GET_ADDRESS_RANGE, VG_REPLY)                \
    X(MEMSET, VG_PIPELINED)                           \
    X(MEMCPY_HTOD, VG_SYNCING)                        \
    X(MEMCPY_HTOD_ASYNC, VG_PIPELINED)                \
    X(MEMCPY_DTOH, VG_SYNCING)                        \
    X(MEMCPY_DTOD, VG_SYNCING)                        \
    X(MEMCPY_DTOD_ASYNC, VG_PIPELINED)                \
    X(MODULE_LOAD_DATA, VG_REPLY)                     \
    X(MODULE_UNLOAD, VG_REPLY)                        \
    X(MODULE_GET_FUNCTION, VG_REPLY)                  \
    X(MODULE_GET_GLOBAL, VG_REPLY)                    \
    X(LIBRARY_LOAD_DATA, VG_REPLY)                    \
    X(LIBRARY_UNLOAD, VG_REPLY)                       \
    X(LIBRARY_GET_KERNEL, VG_REPLY)                   \
    X(LIBRARY_GET_MODULE, VG_REPLY)                   \
    X(KERNEL_GET_FUNCTION, VG_REPLY)                  \
    X(FUNC_GET_PARAM_LAYOUT, VG_REPLY)                \
    X(FUNC_GET_ATTRIBUTE, VG_REPLY)                   \
    X(FUNC_SET_ATTRIBUTE, VG_REPLY)                   \
    X(FUNC_SET_CACHE_CONFIG, VG_REPLY)                \
    X(LAUNCH_KERNEL, VG_PIPELINED)                    \
    X(STREAM_CREATE, VG_REPLY)                        \
    X(STREAM_DESTROY, VG_REPLY)                       \
    X(STREAM_SYNCHRONIZE, VG_SYNCING)                 \
    X(STREAM_QUERY, VG_SYNCING)                       \
    X(STREAM_WAIT_EVENT, VG_PIPELINED)                \
    X(EVENT_CREATE, VG_REPLY)                         \
    X(EVENT_DESTROY, VG_REPLY)                        \
    X(EVENT_RECORD, VG_PIPELINED)                     \
    X(EVENT_SYNCHRONIZE, VG_SYNCING)                  \
    X(EVENT_QUERY, VG_SYNCING)                        \
    X(EVENT_ELAPSED_TIME, VG_REPLY)                   \
    X(POINTER_GET_ATTRIBUTE, VG_REPLY)                \
    X(OCCUPANCY_MAX_BLOCKS, VG_REPLY)                 \
    X(STREAM_GET_PRIORITY, VG_REPLY)                  \
    X(STREAM_GET_FLAGS, VG_REPLY)                     \
    X(LIBRARY_GET_GLOBAL, VG_REPLY)                   \
    X(KERNEL_GET_ATTRIBUTE, VG_REPLY)                 \
    X(KERNEL_SET_ATTRIBUTE, VG_REPLY)                 \
    X(DEVICE_GET_PCI_BUS_ID, VG_REPLY)                \
    X(STREAM_GET_CTX, VG_REPLY)                       \
    X(STREAM_GET_ID, VG_REPLY)                        \
    X(FUNC_GET_NAME, VG_REPLY)                        \
    X(KERNEL_GET_NAME, VG_REPLY)                      \
    X(MEM_ALLOC_PITCH, VG_REPLY)                      \
    X(MEMSET_2D, VG_PIPELINED)                        \
    X(MODULE_GET_FUNCTION_COUNT, VG_REPLY)            \
    X(LIBRARY_GET_KERNEL_COUNT, VG_REPLY)             \
    X(LIBRARY_ENUMERATE_KERNELS, VG_REPLY)            \
    X(FUNC_GET_MODULE, VG_REPLY)                      \
    X(KERNEL_GET_LIBRARY, VG_REPLY)

enum vg_call {
#define VG_CALL_ENUM(id, kind) VG_CALL_##id,
    VG_CALLS(VG_CALL_ENUM)
#undef VG_CALL_ENUM
    VG_CALL_COUNT
};

/* The kind of call `id` (VG_REPLY for an id out of range: the server rejects those anyway). */
static inline int vg_call_kind(unsigned id)
{
    static const unsigned char kinds[] = {
#define VG_CALL_KIND(id, kind) kind,
        VG_CALLS(VG_CALL_KIND)
#undef VG_CALL_KIND
    };
    return id < VG_CALL_COUNT ? kinds[id] : VG_REPLY;
}

/* "MEM_ALLOC" for VG_CALL_MEM_ALLOC, for logs; "?" out of range. */
static inline const char *vg_call_name(unsigned id)
{
    static const char *const names[] = {
#define VG_CALL_NAME(id, kind) #id,
        VG_CALLS(VG_CALL_NAME)
#undef VG_CALL_NAME
    };
    return id < VG_CALL_COUNT ? names[id] : "?";
}

#endif

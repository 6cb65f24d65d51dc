/* vg_cw: one call as the generated wrappers (cuapi_stub.c) and the hand-written ones build it:
 * scalar arguments, bulk segments going out, reply segments coming back, filled in parameter
 * order as protocol/cuda.calls' plan says. vg_cw_run sends it on the process's connection. */
#ifndef VG_CALL_H
#define VG_CALL_H

#include <cuda.h>
#include <stddef.h>
#include <stdint.h>

#include "calls.h"
#include "stub.h"

#define VG_CW_MAX_ARGS 48
#define VG_CW_MAX_SEGS 8
#define VG_CW_MAX_OUTS 8

struct vg_cw {
    unsigned call;
    uint64_t args[VG_CW_MAX_ARGS];
    size_t nargs;
    const char *name;                  /* Call.name */
    const void *in_p[VG_CW_MAX_SEGS];  /* bulk, concatenated in order */
    size_t in_n[VG_CW_MAX_SEGS];
    int nin;
    void *out_p[VG_CW_MAX_SEGS];       /* reply bulk, split in order (exact lengths) */
    size_t out_n[VG_CW_MAX_SEGS];
    int nout;
    uint64_t outs[VG_CW_MAX_OUTS];     /* Reply.outs (missing ones are 0) */
    char *str;                         /* Reply.str, copied with snprintf */
    size_t str_size;
    int want_reply;                    /* wait even for a pipelined call */
    int overflow;                      /* more arguments or segments than fit: a generator bug */
    void *owned[VG_CW_MAX_SEGS];       /* buffers the call owns (freed by vg_cw_done) */
    int nowned;
};

static inline void vg_cw_init(struct vg_cw *c, unsigned call)
{
    c->call = call;
    c->nargs = 0;
    c->name = NULL;
    c->nin = c->nout = 0;
    c->str = NULL;
    c->str_size = 0;
    c->want_reply = 0;
    c->overflow = 0;
    c->nowned = 0;
}

static inline void vg_cw_arg(struct vg_cw *c, uint64_t v)
{
    if (c->nargs < VG_CW_MAX_ARGS)
        c->args[c->nargs++] = v;
    else
        c->overflow = 1;
}

static inline void vg_cw_in(struct vg_cw *c, const void *p, size_t n)
{
    if (n == 0)
        return;
    if (c->nin < VG_CW_MAX_SEGS) {
        c->in_p[c->nin] = p;
        c->in_n[c->nin++] = n;
    } else {
        c->overflow = 1;
    }
}

static inline void vg_cw_out(struct vg_cw *c, void *p, size_t n)
{
    if (n == 0)
        return;
    if (c->nout < VG_CW_MAX_SEGS) {
        c->out_p[c->nout] = p;
        c->out_n[c->nout++] = n;
    } else {
        c->overflow = 1;
    }
}

/* A bulk segment in a malloc'd buffer the call takes over (freed by vg_cw_done, also when p is
 * NULL because the caller's allocation failed: the call then fails with OUT_OF_MEMORY). */
void vg_cw_in_owned(struct vg_cw *c, void *p, size_t n);

/* Sends the call with the calling thread's current context and, unless it is pipelined, waits
 * for the reply and fills outs, str and the reply segments; then vg_cw_done. */
CUresult vg_cw_run(struct vg_cw *c);

/* Frees what the call owns (a call abandoned before vg_cw_run). */
void vg_cw_done(struct vg_cw *c);

#endif

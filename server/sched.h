/* vg_sched: weighted fair sharing of each device's time between tenants, kept on the board so
 * that every session process of a device takes part and gpu-server's main process can clean up
 * after any of them.
 *
 * Unit of work: a *burst*, consecutive device work (kernels, copies, memsets) of one session on
 * one stream, submitted without the session waiting in between, at most a few items when its
 * items are long (sess_sched.c). A burst's device time is measured with two events around it and
 * charged to its tenant when it completes. Bursts with kernels need the device (below); bursts of
 * copies and memsets only are charged, never held back, so that a session's copies proceed
 * while another's long kernel runs.
 *
 * Ownership: at any moment one session process owns a device and may have up to
 * VG_SCHED_INFLIGHT bursts in flight on it (one running, one queued behind: no gap between
 * them); the others wait. On a real GPU this is what time-slicing between processes' contexts
 * does anyway; on the emulated GPU, where each session process runs its own kernels on the CPU,
 * it is what stops the operating system's thread scheduler from deciding the shares.
 *
 * Order: start-time fair queuing. Tenant t's tag is its virtual finish time vft; a tenant
 * that was idle (nothing in flight or waiting for VG_SCHED_IDLE_GRACE_NS) starts at
 * S = max(vft, V) (V, the device's virtual time, is the largest start tag handed out, so it
 * re-enters at the present and banks no credit; when no other tenant has been busy for
 * VG_SCHED_PERIOD_END_NS, a busy period has ended and V first moves on to the largest finish
 * tag, so nobody re-enters owing the time it used alone), a busy one at S = vft, and a burst's start adds its expected cost / weight,
 * corrected by the measured cost at completion. The device goes to the waiting tenant with the smallest S; while others wait,
 * the owner starts no burst unless its own S is the smallest. Work-conserving: alone, a tenant
 * gets the whole device.
 *
 * Caps (limit = P percent): a tenant's bursts are also held to P% of real time by a virtual
 * clock (GCRA): ready_at += cost * 100 / P, and it may start only once now >= ready_at (a tenant
 * idle for a while may start at once: ready_at is lifted to now - VG_SCHED_CAP_BURST_NS).
 *
 * Bounds: a newly busy tenant waits at most for the owner's in-flight bursts (at most
 * VG_SCHED_INFLIGHT, each about VG_SCHED_BURST_NS of device time or one item); a tenant's share
 * in any window is off by at most one burst per tenant. Kernels are never preempted. */
#ifndef VG_SCHED_H
#define VG_SCHED_H

#include <stdint.h>

#include "board.h"

#define VG_SCHED_INFLIGHT 2
#define VG_SCHED_BURST_NS 1000000ull      /* device time a burst aims at (items are whole) */
#define VG_SCHED_CAP_BURST_NS 20000000ull /* budget a capped, idle tenant starts with */
/* A tenant idle for less than this is still busy for its tag: a client that takes a moment to
 * send its next kernel (its process was not running) keeps its place, and may bank at most
 * this much device time of credit. */
#define VG_SCHED_IDLE_GRACE_NS 20000000ull
/* A busy period ends (virtual time moves on to the largest finish tag) once no tenant has been
 * busy for this long: longer than a client off the CPU on a loaded machine. */
#define VG_SCHED_PERIOD_END_NS 100000000ull
_Static_assert(VG_SCHED_PERIOD_END_NS >= VG_SCHED_IDLE_GRACE_NS, "a busy period outlasts the idle grace");

/* Session process: waits until session `slot` (tenant record t) may start a burst on device
 * dev, and takes it; estimate_ns is what the burst is expected to cost (its tenant's tag moves
 * by it at once; the release corrects it). Returns the burst's start tag. Fast when the session owns the device or
 * the device is free and nobody waits: a few atomic loads. */
uint64_t vg_sched_acquire(struct vg_board *b, int slot, uint32_t t, int dev, uint64_t estimate_ns);

/* Session process: device work that took cost_ns completed: charges tenant t (its tag, less the
 * estimate_ns its start charged; its cap; the session's device time). Copies and memsets are charged so, without the device's permit:
 * they do not wait behind other tenants' kernels. */
void vg_sched_charge(struct vg_board *b, int slot, uint32_t t, int dev, uint64_t cost_ns, uint64_t estimate_ns);

/* Session process: a burst taken with vg_sched_acquire completed after cost_ns: charges it, and
 * lets the device go when the session has nothing more in flight on it. */
void vg_sched_release(struct vg_board *b, int slot, uint32_t t, int dev, uint64_t cost_ns, uint64_t estimate_ns);

/* Main process, after session `slot` ended in whatever state: frees the devices it owned and its
 * place in the queues, and wakes who waits. */
void vg_sched_forget_slot(struct vg_board *b, int slot);

#endif

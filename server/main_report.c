/* What gpu-server reports about itself: the status vgpu-smi shows (JSON, built with json-c) and
 * the Prometheus text /metrics serves, both from the main process's state. Loop thread. */
#include "main_report.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- device-time samples ------------------------------------------------------------------ */

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t tenant_busy(const struct vg_main_state *st, uint32_t t)
{
    struct vg_tenant_totals tot;
    vg_children_totals(&st->children, t, &tot);
    uint64_t sum = 0;
    for (int d = 0; d < VG_BOARD_DEVICES; d++)
        sum += tot.busy_ns[d];
    return sum;
}

void vg_report_sample(struct vg_main_state *st)
{
    unsigned i = st->sample_next;
    st->sample_at_ns[i] = mono_ns();
    for (uint32_t t = 0; t < VG_BOARD_TENANTS; t++)
        st->sample_ns[i][t] = st->children.board->tenants[t].state == VG_TENANT_FREE ? 0 : tenant_busy(st, t);
    st->sample_next = (i + 1) % VG_SAMPLES;
    if (st->sample_count < VG_SAMPLES)
        st->sample_count++;
}

/* Tenant t's device time in the last window_ms (from the samples) and the window's real
 * length; 0 when there are no samples that old yet. */
static uint64_t busy_in(const struct vg_main_state *st, uint32_t t, unsigned window_ms, uint64_t *span_ns)
{
    unsigned back = window_ms / VG_SAMPLE_MS;
    *span_ns = 0;
    if (st->sample_count < 2)
        return 0;
    if (back >= st->sample_count)
        back = st->sample_count - 1;
    unsigned newest = (st->sample_next + VG_SAMPLES - 1) % VG_SAMPLES;
    unsigned oldest = (newest + VG_SAMPLES - back) % VG_SAMPLES;
    *span_ns = st->sample_at_ns[newest] - st->sample_at_ns[oldest];
    uint64_t a = st->sample_ns[newest][t], b = st->sample_ns[oldest][t];
    return a > b ? a - b : 0;
}

/* Each tenant's share of the device time used in the last window_ms (0..1), the entitled share
 * of the tenants that used the device in it, and the device's utilisation (busy / wall). */
struct shares {
    double share[VG_BOARD_TENANTS];
    double entitled[VG_BOARD_TENANTS];
    double utilisation;
};

static void compute_shares(const struct vg_main_state *st, unsigned window_ms, struct shares *sh)
{
    memset(sh, 0, sizeof *sh);
    uint64_t used[VG_BOARD_TENANTS], total = 0, span = 0, weights = 0;
    for (uint32_t t = 0; t < VG_BOARD_TENANTS; t++) {
        used[t] = st->children.board->tenants[t].state == VG_TENANT_FREE ? 0 : busy_in(st, t, window_ms, &span);
        total += used[t];
        if (used[t])
            weights += st->children.board->tenants[t].weight;
    }
    int ndev = st->probe->device_count > 0 ? st->probe->device_count : 1;
    if (span)
        sh->utilisation = (double)total / ((double)span * ndev);
    for (uint32_t t = 0; t < VG_BOARD_TENANTS; t++) {
        if (total)
            sh->share[t] = (double)used[t] / (double)total;
        if (used[t] && weights)
            sh->entitled[t] = (double)st->children.board->tenants[t].weight / (double)weights;
    }
}

/* ---- JSON status (vgpu-smi) ------------------------------------------------------------- */

static const char *state_name(uint32_t s)
{
    return s == VG_TENANT_ACTIVE ? "active" : s == VG_TENANT_REMOVED ? "removed" : "free";
}

static struct json_object *jstr(const char *s)
{
    return json_object_new_string(s ? s : "");
}

static struct json_object *ju64(uint64_t v)
{
    return json_object_new_uint64(v);
}

static void iso_time(time_t t, char *buf, size_t size)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void uuid_string(const uint8_t u[16], char *buf, size_t size)
{
    snprintf(buf, size, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
             u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

static uint64_t slot_mem(const struct vg_main_state *st, const struct vg_child *c)
{
    uint64_t m = 0;
    for (int d = 0; d < VG_BOARD_DEVICES; d++)
        m += __atomic_load_n(&st->children.board->slots[c->slot].mem[d], __ATOMIC_RELAXED);
    return m;
}

struct json_object *vg_report_json(const struct vg_main_state *st)
{
    struct vg_board *b = st->children.board;
    struct shares s1, s10;
    compute_shares(st, 1000, &s1);
    compute_shares(st, 10000, &s10);
    struct json_object *root = json_object_new_object();

    struct json_object *srv = json_object_new_object();
    json_object_object_add(srv, "driver", jstr(st->probe->desc));
    json_object_object_add(srv, "tenants_file", st->cfg->tenants_path ? jstr(st->cfg->tenants_path) : NULL);
    json_object_object_add(srv, "uptime_s", ju64((uint64_t)(time(NULL) - st->started)));
    json_object_object_add(srv, "sessions", ju64(st->children.n));
    json_object_object_add(srv, "buffered_bytes", ju64(vg_board_buffered_total(b)));
    struct json_object *refused = json_object_new_object();
    for (int r = 0; r < VG_REFUSAL_COUNT; r++)
        json_object_object_add(refused, vg_refusal_name((enum vg_refusal)r), ju64(st->refused[r]));
    json_object_object_add(srv, "refused_connections", refused);
    json_object_object_add(root, "server", srv);

    struct json_object *devs = json_object_new_array();
    for (int d = 0; d < st->probe->device_count && d < VG_BOARD_DEVICES; d++) {
        const struct vg_device_facts *f = &st->probe->dev[d];
        struct json_object *o = json_object_new_object();
        char uuid[64];
        uuid_string(f->uuid, uuid, sizeof uuid);
        uint64_t used = 0;
        for (uint32_t t = 0; t < VG_BOARD_TENANTS; t++)
            if (b->tenants[t].state != VG_TENANT_FREE)
                used += vg_board_tenant_mem(b, t, d);
        json_object_object_add(o, "index", json_object_new_int(d));
        json_object_object_add(o, "name", jstr(f->name));
        json_object_object_add(o, "uuid", jstr(uuid));
        json_object_object_add(o, "memory_total", ju64(f->total_mem));
        json_object_object_add(o, "memory_used", ju64(used));
        json_object_array_add(devs, o);
    }
    json_object_object_add(root, "devices", devs);
    json_object_object_add(root, "utilization_1s", json_object_new_double(s1.utilisation));
    json_object_object_add(root, "utilization_10s", json_object_new_double(s10.utilisation));

    struct json_object *tens = json_object_new_array();
    for (uint32_t t = 0; t < VG_BOARD_TENANTS; t++) {
        const struct vg_board_tenant *bt = &b->tenants[t];
        if (bt->state == VG_TENANT_FREE)
            continue;
        struct vg_tenant_totals tot;
        vg_children_totals(&st->children, t, &tot);
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "name", jstr(bt->name));
        json_object_object_add(o, "state", jstr(state_name(bt->state)));
        json_object_object_add(o, "weight", json_object_new_int((int)bt->weight));
        json_object_object_add(o, "limit_percent", json_object_new_int((int)bt->cap_percent));
        json_object_object_add(o, "memory_limit", ju64(bt->mem_limit));
        struct json_object *mem = json_object_new_array();
        uint64_t busy = 0;
        for (int d = 0; d < st->probe->device_count && d < VG_BOARD_DEVICES; d++) {
            json_object_array_add(mem, ju64(vg_board_tenant_mem(b, t, d)));
            busy += tot.busy_ns[d];
        }
        json_object_object_add(o, "memory_used", mem);
        json_object_object_add(o, "device_time_s", json_object_new_double((double)busy / 1e9));
        json_object_object_add(o, "share_1s", json_object_new_double(s1.share[t]));
        json_object_object_add(o, "share_10s", json_object_new_double(s10.share[t]));
        json_object_object_add(o, "entitled_share", json_object_new_double(s10.entitled[t]));
        json_object_object_add(o, "calls", ju64(tot.calls));
        json_object_object_add(o, "bytes_to_device", ju64(tot.bytes_to_device));
        json_object_object_add(o, "bytes_from_device", ju64(tot.bytes_from_device));
        json_object_object_add(o, "refused_allocations", ju64(tot.refused_allocs));
        struct json_object *sess = json_object_new_array();
        for (unsigned i = 0; i < st->children.n; i++) {
            const struct vg_child *c = &st->children.c[i];
            if (c->tenant != t)
                continue;
            struct json_object *so = json_object_new_object();
            char since[32];
            iso_time(c->since, since, sizeof since);
            json_object_object_add(so, "id", ju64(c->session_id));
            json_object_object_add(so, "process", json_object_new_int((int)c->pid));
            json_object_object_add(so, "client", jstr(c->addr));
            json_object_object_add(so, "client_host", jstr(c->host));
            json_object_object_add(so, "client_pid", json_object_new_int((int)c->client_pid));
            json_object_object_add(so, "program", jstr(c->program));
            json_object_object_add(so, "connected_since", jstr(since));
            json_object_object_add(so, "memory_used", ju64(slot_mem(st, c)));
            json_object_array_add(sess, so);
        }
        json_object_object_add(o, "sessions", sess);
        json_object_array_add(tens, o);
    }
    json_object_object_add(root, "tenants", tens);
    return root;
}

/* ---- Prometheus text (/metrics) ------------------------------------------------------------ */

struct out {
    char *buf;
    size_t len, cap;
    int failed;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = 1;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap * 2 + (size_t)n;
        char *nb = realloc(o->buf, cap);
        if (!nb) {
            o->failed = 1;
            return;
        }
        o->buf = nb;
        o->cap = cap;
    }
}

static void help(struct out *o, const char *name, const char *type, const char *text)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

char *vg_report_metrics(const struct vg_main_state *st, size_t *len)
{
    struct vg_board *b = st->children.board;
    struct out o = {.cap = 16384};
    o.buf = malloc(o.cap);
    if (!o.buf)
        return NULL;
    o.buf[0] = 0;
    int ndev = st->probe->device_count < VG_BOARD_DEVICES ? st->probe->device_count : VG_BOARD_DEVICES;
    char uuids[VG_BOARD_DEVICES][64];
    for (int d = 0; d < ndev; d++)
        uuid_string(st->probe->dev[d].uuid, uuids[d], sizeof uuids[d]);

    /* Per device, in the DCGM exporter's style: a gpu label, the UUID and the model name. */
    help(&o, "vgpu_fb_total_bytes", "gauge", "Device memory of the GPU.");
    for (int d = 0; d < ndev; d++)
        put(&o, "vgpu_fb_total_bytes{gpu=\"%d\",UUID=\"%s\",modelName=\"%s\"} %llu\n", d, uuids[d],
            st->probe->dev[d].name, (unsigned long long)st->probe->dev[d].total_mem);
    help(&o, "vgpu_fb_used_bytes", "gauge", "Device memory charged to tenants on the GPU.");
    for (int d = 0; d < ndev; d++) {
        uint64_t used = 0;
        for (uint32_t t = 0; t < VG_BOARD_TENANTS; t++)
            if (b->tenants[t].state != VG_TENANT_FREE)
                used += vg_board_tenant_mem(b, t, d);
        put(&o, "vgpu_fb_used_bytes{gpu=\"%d\",UUID=\"%s\",modelName=\"%s\"} %llu\n", d, uuids[d],
            st->probe->dev[d].name, (unsigned long long)used);
    }

    /* Per tenant (and device where it is per device). */
    help(&o, "vgpu_tenant_fb_used_bytes", "gauge", "Device memory the tenant uses on the GPU.");
    for (uint32_t t = 0; t < VG_BOARD_TENANTS; t++)
        for (int d = 0; b->tenants[t].state != VG_TENANT_FREE && d < ndev; d++)
            put(&o, "vgpu_tenant_fb_used_bytes{tenant=\"%s\",gpu=\"%d\",UUID=\"%s\"} %llu\n", b->tenants[t].name,
                d, uuids[d], (unsigned long long)vg_board_tenant_mem(b, t, d));
    help(&o, "vgpu_tenant_fb_limit_bytes", "gauge", "The tenant's memory limit per GPU (0: none).");
    for (uint32_t t = 0; t < VG_BOARD_TENANTS; t++)
        if (b->tenants[t].state != VG_TENANT_FREE)
            put(&o, "vgpu_tenant_fb_limit_bytes{tenant=\"%s\"} %llu\n", b->tenants[t].name,
                (unsigned long long)b->tenants[t].mem_limit);
    help(&o, "vgpu_tenant_device_time_seconds_total", "counter", "Device time the tenant's kernels and copies took.");
    struct vg_tenant_totals tot[VG_BOARD_TENANTS];
    for (uint32_t t = 0; t < VG_BOARD_TENANTS; t++)
        if (b->tenants[t].state != VG_TENANT_FREE)
            vg_children_totals(&st->children, t, &tot[t]);
    for (uint32_t t = 0; t < VG_BOARD_TENANTS; t++)
        for (int d = 0; b->tenants[t].state != VG_TENANT_FREE && d < ndev; d++)
            put(&o, "vgpu_tenant_device_time_seconds_total{tenant=\"%s\",gpu=\"%d\",UUID=\"%s\"} %.9f\n",
                b->tenants[t].name, d, uuids[d], (double)tot[t].busy_ns[d] / 1e9);
    help(&o, "vgpu_tenant_calls_total", "counter", "Driver calls the tenant's sessions made.");
    for (uint32_t t = 0; t < VG_BOARD_TENANTS; t++)
        if (b->tenants[t].state != VG_TENANT_FREE)
            put(&o, "vgpu_tenant_calls_total{tenant=\"%s\"} %llu\n", b->tenants[t].name,
                (unsigned long long)tot[t].calls);
    help(&o, "vgpu_tenant_copied_bytes_total", "counter", "Bytes the tenant's sessions moved to and from the server.");
    for (uint32_t t = 0; t < VG_BOARD_TENANTS; t++) {
        if (b->tenants[t].state == VG_TENANT_FREE)
            continue;
        put(&o, "vgpu_tenant_copied_bytes_total{tenant=\"%s\",direction=\"to_device\"} %llu\n",
            b->tenants[t].name, (unsigned long long)tot[t].bytes_to_device);
        put(&o, "vgpu_tenant_copied_bytes_total{tenant=\"%s\",direction=\"from_device\"} %llu\n",
            b->tenants[t].name, (unsigned long long)tot[t].bytes_from_device);
    }
    help(&o, "vgpu_tenant_sessions", "gauge", "The tenant's live sessions.");
    for (uint32_t t = 0; t < VG_BOARD_TENANTS; t++) {
        if (b->tenants[t].state == VG_TENANT_FREE)
            continue;
        unsigned n = 0;
        for (unsigned i = 0; i < st->children.n; i++)
            n += st->children.c[i].tenant == t;
        put(&o, "vgpu_tenant_sessions{tenant=\"%s\"} %u\n", b->tenants[t].name, n);
    }
    help(&o, "vgpu_tenant_refused_allocations_total", "counter", "Allocations refused over the tenant's memory limit.");
    for (uint32_t t = 0; t < VG_BOARD_TENANTS; t++)
        if (b->tenants[t].state != VG_TENANT_FREE)
            put(&o, "vgpu_tenant_refused_allocations_total{tenant=\"%s\"} %llu\n", b->tenants[t].name,
                (unsigned long long)tot[t].refused_allocs);
    help(&o, "vgpu_refused_connections_total", "counter", "Connections refused before they became a session, by reason.");
    for (int r = 0; r < VG_REFUSAL_COUNT; r++)
        put(&o, "vgpu_refused_connections_total{reason=\"%s\"} %llu\n", vg_refusal_name((enum vg_refusal)r),
            (unsigned long long)st->refused[r]);
    help(&o, "vgpu_sessions", "gauge", "Live session processes.");
    put(&o, "vgpu_sessions %u\n", st->children.n);
    if (o.failed) {
        free(o.buf);
        return NULL;
    }
    *len = o.len;
    return o.buf;
}

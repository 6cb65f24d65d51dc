/* emu_graph: CUDA graphs (explicit construction, instantiation, launch, update) and stream
 * capture.
 *
 * A graph is a set of nodes with dependency edges. Kernel, memcpy, memset and host nodes keep
 * their parameters in our own memory (kernel parameters packed at node creation, as CUDA copies
 * them). Instantiating a graph makes an exec: a private deep copy of the graph, each node
 * remembering the node it was copied from (so cuGraphExec*SetParams finds it), and a topological
 * order. Launching an exec turns its nodes, in that order, into the same work items that
 * cuLaunchKernel, cuMemcpy3DAsync, cuMemsetD*Async, cuLaunchHostFunc, cuEventRecord and
 * cuStreamWaitEvent queue: every stream of a context feeds one in-order queue, so a topological
 * order is a correct schedule of the graph. Updating an exec changes what later launches queue;
 * launches already queued keep their own copies.
 *
 * Stream capture turns the work submitted to a capturing stream into nodes of the capture's graph
 * instead of queueing it (emu_submit calls emu_capture_submit), each depending on the stream's
 * current dependency set; events recorded in a capturing stream carry that set to streams that
 * wait on them, which joins them to the capture (fork and join, as CUDA does it).
 *
 * Memory allocation nodes (and cuMemAllocAsync in a capture) allocate their memory when the node
 * is made and keep it until the last graph or exec holding the node is destroyed (or the program
 * frees it); free nodes do nothing when launched. Not supported: conditional nodes, external
 * semaphore and batch memory-operation nodes, device-side graph launch, edges with ports.
 *
 * Everything here is guarded by emu_graph_lock. */
#include "emu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

pthread_mutex_t emu_graph_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct emu_graph emu_graph;
typedef struct emu_graph_node emu_graph_node;

#define MAX_NODE_ATTRS 8

/* Memory of an allocation node, shared by the node's copies in clones and execs. */
typedef struct graph_alloc {
    int tag; /* EMU_OWNER_GRAPH_ALLOC */
    int refs;
    uint64_t addr;
    size_t size;
    int dev;
} graph_alloc;

struct emu_graph_node {
    emu_graph *graph;
    CUgraphNodeType type;
    unsigned long long id;     /* creation order in its graph: matches nodes across copies */
    emu_graph_node *origin;    /* the node this one was copied from (clones and execs) */
    emu_graph_node *updated_from; /* exec nodes: the node of the graph last given to update */
    size_t idx;                /* position in graph->nodes, set by index_nodes() */
    unsigned long long visit;  /* traversal stamp */
    emu_graph_node **deps;
    size_t ndeps, depcap;
    emu_graph_node **outs;
    size_t nouts, outcap;
    int enabled;
    union {
        struct {
            void *handle;
            CUcontext ctx;
            unsigned grid[3], block[3], shared;
            unsigned char *params;
            size_t nbytes, nparams;
            void **param_ptrs;
            CUlaunchAttribute attrs[MAX_NODE_ATTRS];
            unsigned nattrs;
        } kernel;
        struct {
            emu_copy3d copy;
            CUcontext ctx;
        } memcpy;
        struct {
            CUDA_MEMSET_NODE_PARAMS p;
            CUcontext ctx;
        } memset;
        struct {
            CUhostFn fn;
            void *user;
        } host;
        struct {
            emu_graph *child;
        } graph;
        struct {
            CUevent event;
        } event;
        struct {
            graph_alloc *ga;
            CUDA_MEM_ALLOC_NODE_PARAMS p;
            CUmemAccessDesc access[EMU_MAX_DEVICES];
        } alloc;
        struct {
            CUdeviceptr dptr;
        } free;
    } u;
};

typedef struct user_object {
    int refs;
    void *ptr;
    CUhostFn destroy;
} user_object;

struct user_ref {
    user_object *obj;
    unsigned count;
};

struct emu_graph {
    emu_graph_node **nodes;
    size_t nnodes, cap;
    unsigned long long next_id;
    emu_graph_node *owner;     /* the child-graph node that embeds it, or NULL */
    int registered;            /* a CUgraph handle the program may use */
    struct user_ref *users;
    size_t nusers;
    emu_graph_node **order;    /* topological order, NULL when stale */
};

typedef struct emu_graph_exec {
    emu_graph *g;              /* private copy */
    unsigned long long flags;
    struct user_ref *users;
    size_t nusers;
} emu_graph_exec;

struct emu_capture {
    unsigned long long id;
    emu_graph *graph;
    emu_ctx *ctx;
    emu_stream *origin;
    CUstreamCaptureMode mode;
    pthread_t thread;
    int invalidated;
    int owns_graph;            /* made by cuStreamBeginCapture (not given to ...ToGraph) */
    emu_stream **members;
    size_t nmembers, memcap;
    CUgraphEdgeData *edges;    /* zeroed edge data for cuStreamGetCaptureInfo */
    size_t nedges;
    struct emu_capture *next;
};

static struct emu_capture *captures;
static _Atomic int active_captures;
static unsigned long long next_capture_id = 1;
static __thread CUstreamCaptureMode thread_mode = CU_STREAM_CAPTURE_MODE_GLOBAL;

/* ---- small vectors ---- */

static int push_node(emu_graph_node ***v, size_t *n, size_t *cap, emu_graph_node *x)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        emu_graph_node **nv = realloc(*v, ncap * sizeof *nv);
        if (!nv)
            return -1;
        *v = nv;
        *cap = ncap;
    }
    (*v)[(*n)++] = x;
    return 0;
}

static void drop_node(emu_graph_node **v, size_t *n, emu_graph_node *x)
{
    for (size_t i = 0; i < *n; i++) {
        if (v[i] == x) {
            memmove(&v[i], &v[i + 1], (*n - i - 1) * sizeof *v);
            (*n)--;
            return;
        }
    }
}

static int has_node(emu_graph_node *const *v, size_t n, const emu_graph_node *x)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == x)
            return 1;
    return 0;
}

/* ---- graphs and nodes ---- */

static emu_graph *graph_new(int registered)
{
    emu_graph *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->registered = registered;
    if (registered && emu_obj_add(g, EMU_OBJ_GRAPH) != 0) {
        free(g);
        return NULL;
    }
    return g;
}

static void graph_free(emu_graph *g);

static void user_objects_release(struct user_ref *users, size_t n);

static void graph_alloc_unref(graph_alloc *ga);

static void node_free_params(emu_graph_node *n)
{
    switch (n->type) {
    case CU_GRAPH_NODE_TYPE_KERNEL:
        free(n->u.kernel.params);
        free(n->u.kernel.param_ptrs);
        break;
    case CU_GRAPH_NODE_TYPE_MEMCPY:
        emu_copy3d_release(&n->u.memcpy.copy);
        break;
    case CU_GRAPH_NODE_TYPE_GRAPH:
        if (n->u.graph.child)
            graph_free(n->u.graph.child);
        break;
    case CU_GRAPH_NODE_TYPE_MEM_ALLOC:
        graph_alloc_unref(n->u.alloc.ga);
        break;
    default:
        break;
    }
}

static void node_free(emu_graph_node *n)
{
    if (n->graph && n->graph->registered)
        emu_obj_del(n);
    node_free_params(n);
    free(n->deps);
    free(n->outs);
    free(n);
}

static void graph_free(emu_graph *g)
{
    if (g->registered)
        emu_obj_del(g);
    for (size_t i = 0; i < g->nnodes; i++)
        node_free(g->nodes[i]);
    user_objects_release(g->users, g->nusers);
    free(g->users);
    free(g->nodes);
    free(g->order);
    free(g);
}

/* Adds a new node of type to g after deps (already validated as nodes of g). */
static emu_graph_node *node_new(emu_graph *g, CUgraphNodeType type, emu_graph_node *const *deps,
                                size_t ndeps)
{
    emu_graph_node *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->graph = g;
    n->type = type;
    n->enabled = 1;
    n->id = g->next_id++;
    for (size_t i = 0; i < ndeps; i++) {
        if (has_node(n->deps, n->ndeps, deps[i]))
            continue;
        if (push_node(&n->deps, &n->ndeps, &n->depcap, deps[i]) != 0 ||
            push_node(&deps[i]->outs, &deps[i]->nouts, &deps[i]->outcap, n) != 0)
            goto fail;
    }
    if (push_node(&g->nodes, &g->nnodes, &g->cap, n) != 0)
        goto fail;
    if (g->registered && emu_obj_add(n, EMU_OBJ_GRAPH_NODE) != 0) {
        g->nnodes--;
        goto fail;
    }
    free(g->order);
    g->order = NULL;
    return n;
fail:
    for (size_t i = 0; i < n->ndeps; i++)
        drop_node(n->deps[i]->outs, &n->deps[i]->nouts, n);
    free(n->deps);
    free(n->outs);
    free(n);
    return NULL;
}

static void index_nodes(emu_graph *g)
{
    for (size_t i = 0; i < g->nnodes; i++)
        g->nodes[i]->idx = i;
}

static unsigned long long visit_stamp;

/* Kahn's algorithm; NULL when out of memory or cyclic. */
static emu_graph_node **topo_order(emu_graph *g)
{
    if (g->order)
        return g->order;
    size_t n = g->nnodes;
    emu_graph_node **order = malloc((n ? n : 1) * sizeof *order);
    size_t *indeg = malloc((n ? n : 1) * sizeof *indeg);
    if (!order || !indeg) {
        free(order);
        free(indeg);
        return NULL;
    }
    index_nodes(g);
    for (size_t i = 0; i < n; i++)
        indeg[i] = g->nodes[i]->ndeps;
    size_t head = 0, tail = 0;
    for (size_t i = 0; i < n; i++)
        if (indeg[i] == 0)
            order[tail++] = g->nodes[i];
    while (head < tail) {
        emu_graph_node *x = order[head++];
        for (size_t k = 0; k < x->nouts; k++)
            if (--indeg[x->outs[k]->idx] == 0)
                order[tail++] = x->outs[k];
    }
    free(indeg);
    if (tail != n) {
        free(order);
        return NULL;
    }
    g->order = order;
    return order;
}

/* Whether to is reachable from from (so an edge to -> from would close a cycle). Iterative, with
 * visit stamps: graphs may be long chains. */
static int reaches(emu_graph *g, emu_graph_node *from, const emu_graph_node *to)
{
    emu_graph_node **stack = malloc((g->nnodes ? g->nnodes : 1) * sizeof *stack);
    if (!stack)
        return 1; /* cannot tell: refuse the edge */
    unsigned long long stamp = ++visit_stamp;
    size_t sp = 0;
    int found = 0;
    stack[sp++] = from;
    from->visit = stamp;
    while (sp && !found) {
        emu_graph_node *x = stack[--sp];
        if (x == to) {
            found = 1;
            break;
        }
        for (size_t i = 0; i < x->nouts; i++) {
            if (x->outs[i]->visit != stamp) {
                x->outs[i]->visit = stamp;
                stack[sp++] = x->outs[i];
            }
        }
    }
    free(stack);
    return found;
}

static CUresult graph_resolve(CUgraph h, emu_graph **out)
{
    return emu_obj_resolve(h, EMU_OBJ_GRAPH, CUDA_ERROR_INVALID_VALUE, (void **)out);
}

static CUresult node_resolve(CUgraphNode h, emu_graph_node **out)
{
    return emu_obj_resolve(h, EMU_OBJ_GRAPH_NODE, CUDA_ERROR_INVALID_VALUE, (void **)out);
}

static CUresult exec_resolve(CUgraphExec h, emu_graph_exec **out)
{
    return emu_obj_resolve(h, EMU_OBJ_GRAPH_EXEC, CUDA_ERROR_INVALID_VALUE, (void **)out);
}

/* Reads a caller's dependency array into our memory and checks each is a node of g. */
static CUresult read_deps(emu_graph *g, const CUgraphNode *deps, size_t n, emu_graph_node ***out)
{
    *out = NULL;
    if (n == 0)
        return CUDA_SUCCESS;
    if (!deps || n > (1u << 20))
        return CUDA_ERROR_INVALID_VALUE;
    emu_graph_node **v = malloc(n * sizeof *v);
    if (!v)
        return CUDA_ERROR_OUT_OF_MEMORY;
    if (emu_host_read(v, deps, n * sizeof *v)) {
        free(v);
        return CUDA_ERROR_INVALID_VALUE;
    }
    for (size_t i = 0; i < n; i++) {
        if (!emu_obj_is(v[i], EMU_OBJ_GRAPH_NODE) || v[i]->graph != g) {
            free(v);
            return CUDA_ERROR_INVALID_VALUE;
        }
    }
    *out = v;
    return CUDA_SUCCESS;
}

/* Only default edges (full completion, no ports) exist here. */
static CUresult check_edges(const CUgraphEdgeData *edges, size_t n)
{
    for (size_t i = 0; edges && i < n; i++) {
        CUgraphEdgeData e;
        if (emu_host_read(&e, &edges[i], sizeof e))
            return CUDA_ERROR_INVALID_VALUE;
        if (e.from_port || e.to_port || e.type)
            return EMU_UNSUPPORTED("graph edges with ports or programmatic dependencies");
    }
    return CUDA_SUCCESS;
}

/* ---- node parameters ---- */

static CUresult set_kernel_params(emu_graph_node *n, const CUDA_KERNEL_NODE_PARAMS *p)
{
    void *handle = p->kern ? (void *)p->kern : (void *)p->func;
    const ptx_kernel *k = emu_launch_layout(handle);
    if (!k)
        return CUDA_ERROR_INVALID_VALUE;
    if (!p->gridDimX || !p->gridDimY || !p->gridDimZ || !p->blockDimX || !p->blockDimY ||
        !p->blockDimZ)
        return CUDA_ERROR_INVALID_VALUE;
    size_t nbytes = ptx_kernel_param_bytes(k), nparams = ptx_kernel_param_count(k);
    unsigned char *buf = malloc(nbytes ? nbytes : 1);
    void **ptrs = malloc((nparams ? nparams : 1) * sizeof *ptrs);
    if (!buf || !ptrs) {
        free(buf);
        free(ptrs);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    CUresult r = emu_pack_params(k, p->kernelParams, p->extra, buf);
    if (r) {
        free(buf);
        free(ptrs);
        return r;
    }
    for (size_t i = 0; i < nparams; i++) {
        size_t off, size;
        ptx_kernel_param(k, i, &off, &size);
        ptrs[i] = buf + off;
    }
    free(n->u.kernel.params);
    free(n->u.kernel.param_ptrs);
    n->u.kernel.handle = handle;
    n->u.kernel.ctx = p->ctx;
    n->u.kernel.grid[0] = p->gridDimX;
    n->u.kernel.grid[1] = p->gridDimY;
    n->u.kernel.grid[2] = p->gridDimZ;
    n->u.kernel.block[0] = p->blockDimX;
    n->u.kernel.block[1] = p->blockDimY;
    n->u.kernel.block[2] = p->blockDimZ;
    n->u.kernel.shared = p->sharedMemBytes;
    n->u.kernel.params = buf;
    n->u.kernel.nbytes = nbytes;
    n->u.kernel.nparams = nparams;
    n->u.kernel.param_ptrs = ptrs;
    return CUDA_SUCCESS;
}

static void get_kernel_params(const emu_graph_node *n, CUDA_KERNEL_NODE_PARAMS *p)
{
    memset(p, 0, sizeof *p);
    int is_kernel = emu_obj_kind(n->u.kernel.handle) == EMU_OBJ_KERNEL;
    p->func = is_kernel ? NULL : (CUfunction)n->u.kernel.handle;
    p->kern = is_kernel ? (CUkernel)n->u.kernel.handle : NULL;
    p->ctx = n->u.kernel.ctx;
    p->gridDimX = n->u.kernel.grid[0];
    p->gridDimY = n->u.kernel.grid[1];
    p->gridDimZ = n->u.kernel.grid[2];
    p->blockDimX = n->u.kernel.block[0];
    p->blockDimY = n->u.kernel.block[1];
    p->blockDimZ = n->u.kernel.block[2];
    p->sharedMemBytes = n->u.kernel.shared;
    p->kernelParams = n->u.kernel.param_ptrs; /* valid while the node's parameters are unchanged */
    p->extra = NULL;
}

static CUresult set_memcpy_params(emu_graph_node *n, const CUDA_MEMCPY3D *caller, CUcontext ctx)
{
    CUDA_MEMCPY3D d;
    if (!caller || emu_host_read(&d, caller, sizeof d))
        return CUDA_ERROR_INVALID_VALUE;
    emu_copy3d c;
    CUresult r = emu_copy3d_from_desc(&d, &c);
    if (r)
        return r;
    if (n->type == CU_GRAPH_NODE_TYPE_MEMCPY)
        emu_copy3d_release(&n->u.memcpy.copy);
    n->u.memcpy.copy = c;
    n->u.memcpy.ctx = ctx;
    return CUDA_SUCCESS;
}

static CUresult set_memset_params(emu_graph_node *n, const CUDA_MEMSET_NODE_PARAMS *caller,
                                  CUcontext ctx)
{
    CUDA_MEMSET_NODE_PARAMS p;
    if (!caller || emu_host_read(&p, caller, sizeof p))
        return CUDA_ERROR_INVALID_VALUE;
    if ((p.elementSize != 1 && p.elementSize != 2 && p.elementSize != 4) || p.width == 0 ||
        p.height == 0 || (p.height > 1 && p.pitch < p.width * p.elementSize))
        return CUDA_ERROR_INVALID_VALUE;
    n->u.memset.p = p;
    n->u.memset.ctx = ctx;
    return CUDA_SUCCESS;
}

static CUresult set_host_params(emu_graph_node *n, const CUDA_HOST_NODE_PARAMS *caller)
{
    CUDA_HOST_NODE_PARAMS p;
    if (!caller || emu_host_read(&p, caller, sizeof p) || !p.fn)
        return CUDA_ERROR_INVALID_VALUE;
    n->u.host.fn = p.fn;
    n->u.host.user = p.userData;
    return CUDA_SUCCESS;
}

static CUresult check_event(CUevent e)
{
    emu_event *ev;
    return emu_event_resolve(e, &ev) ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
}

/* ---- copying graphs ---- */

static emu_graph *graph_copy(emu_graph *src, int registered, emu_graph_node *owner);

static CUresult node_copy_params(emu_graph_node *dst, const emu_graph_node *src)
{
    dst->u = src->u;
    switch (src->type) {
    case CU_GRAPH_NODE_TYPE_KERNEL: {
        size_t nb = src->u.kernel.nbytes, np = src->u.kernel.nparams;
        dst->u.kernel.params = malloc(nb ? nb : 1);
        dst->u.kernel.param_ptrs = malloc((np ? np : 1) * sizeof(void *));
        if (!dst->u.kernel.params || !dst->u.kernel.param_ptrs) {
            free(dst->u.kernel.params);
            free(dst->u.kernel.param_ptrs);
            dst->u.kernel.params = NULL;
            dst->u.kernel.param_ptrs = NULL;
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        memcpy(dst->u.kernel.params, src->u.kernel.params, nb);
        for (size_t i = 0; i < np; i++)
            dst->u.kernel.param_ptrs[i] = dst->u.kernel.params +
                                          ((unsigned char *)src->u.kernel.param_ptrs[i] -
                                           src->u.kernel.params);
        break;
    }
    case CU_GRAPH_NODE_TYPE_MEMCPY:
        emu_copy3d_retain(&dst->u.memcpy.copy);
        break;
    case CU_GRAPH_NODE_TYPE_GRAPH:
        dst->u.graph.child = graph_copy(src->u.graph.child, dst->graph->registered, dst);
        if (!dst->u.graph.child)
            return CUDA_ERROR_OUT_OF_MEMORY;
        break;
    case CU_GRAPH_NODE_TYPE_MEM_ALLOC:
        dst->u.alloc.ga->refs++;
        break;
    default:
        break;
    }
    return CUDA_SUCCESS;
}

/* A deep copy of src: nodes in the same order (ids kept), edges, child graphs, parameters. */
static emu_graph *graph_copy(emu_graph *src, int registered, emu_graph_node *owner)
{
    emu_graph *g = graph_new(registered);
    if (!g)
        return NULL;
    g->owner = owner;
    index_nodes(src);
    for (size_t i = 0; i < src->nnodes; i++) {
        const emu_graph_node *s = src->nodes[i];
        emu_graph_node *n = node_new(g, CU_GRAPH_NODE_TYPE_EMPTY, NULL, 0);
        if (!n)
            goto fail;
        n->id = s->id;
        n->origin = (emu_graph_node *)s;
        n->enabled = s->enabled;
        if (node_copy_params(n, s) != CUDA_SUCCESS)
            goto fail; /* n stays EMPTY: nothing of it to release */
        n->type = s->type;
    }
    g->next_id = src->next_id;
    /* Edges, by position: g's nodes are in src's order. */
    for (size_t i = 0; i < src->nnodes; i++) {
        const emu_graph_node *s = src->nodes[i];
        emu_graph_node *n = g->nodes[i];
        for (size_t k = 0; k < s->ndeps; k++) {
            emu_graph_node *d = g->nodes[s->deps[k]->idx];
            if (push_node(&n->deps, &n->ndeps, &n->depcap, d) != 0 ||
                push_node(&d->outs, &d->nouts, &d->outcap, n) != 0)
                goto fail;
        }
    }
    return g;
fail:
    graph_free(g);
    return NULL;
}

/* The node of exec graph g (or of its child graphs) that was copied from, or last updated from,
 * the program's node h. */
static emu_graph_node *exec_find(emu_graph *g, const emu_graph_node *h)
{
    for (size_t i = 0; i < g->nnodes; i++) {
        emu_graph_node *n = g->nodes[i];
        if (n->origin == h || n->updated_from == h)
            return n;
        if (n->type == CU_GRAPH_NODE_TYPE_GRAPH) {
            emu_graph_node *m = exec_find(n->u.graph.child, h);
            if (m)
                return m;
        }
    }
    return NULL;
}

/* ---- user objects ---- */

static void user_object_unref(user_object *o, unsigned count)
{
    if ((unsigned)o->refs <= count) {
        emu_obj_del(o);
        if (o->destroy)
            o->destroy(o->ptr);
        free(o);
    } else {
        o->refs -= (int)count;
    }
}

static void user_objects_release(struct user_ref *users, size_t n)
{
    for (size_t i = 0; i < n; i++)
        user_object_unref(users[i].obj, users[i].count);
}

CUresult CUDAAPI cuUserObjectCreate(CUuserObject *object_out, void *ptr, CUhostFn destroy,
                                    unsigned int initialRefcount, unsigned int flags)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (!object_out || !destroy || initialRefcount == 0 || initialRefcount > INT32_MAX ||
        flags != CU_USER_OBJECT_NO_DESTRUCTOR_SYNC)
        return CUDA_ERROR_INVALID_VALUE;
    user_object *o = calloc(1, sizeof *o);
    if (!o)
        return CUDA_ERROR_OUT_OF_MEMORY;
    o->refs = (int)initialRefcount;
    o->ptr = ptr;
    o->destroy = destroy;
    if (emu_obj_add(o, EMU_OBJ_USER_OBJECT) != 0) {
        free(o);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *object_out = (CUuserObject)o;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuUserObjectRetain(CUuserObject object, unsigned int count)
{
    if (count == 0 || count > INT32_MAX)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&emu_graph_lock);
    CUresult r = emu_obj_is(object, EMU_OBJ_USER_OBJECT) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    if (!r) {
        user_object *o = (user_object *)object;
        if (o->refs > INT32_MAX - (int)count)
            r = CUDA_ERROR_INVALID_VALUE;
        else
            o->refs += (int)count;
    }
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

CUresult CUDAAPI cuUserObjectRelease(CUuserObject object, unsigned int count)
{
    if (count == 0)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&emu_graph_lock);
    CUresult r = emu_obj_is(object, EMU_OBJ_USER_OBJECT) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    if (!r)
        user_object_unref((user_object *)object, count);
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

static int users_add(struct user_ref **users, size_t *n, user_object *o, unsigned count)
{
    for (size_t i = 0; i < *n; i++) {
        if ((*users)[i].obj == o) {
            (*users)[i].count += count;
            return 0;
        }
    }
    struct user_ref *nu = realloc(*users, (*n + 1) * sizeof *nu);
    if (!nu)
        return -1;
    nu[*n] = (struct user_ref){o, count};
    *users = nu;
    (*n)++;
    return 0;
}

CUresult CUDAAPI cuGraphRetainUserObject(CUgraph graph, CUuserObject object, unsigned int count,
                                         unsigned int flags)
{
    if (count == 0 || count > INT32_MAX || (flags & ~(unsigned)CU_GRAPH_USER_OBJECT_MOVE))
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&emu_graph_lock);
    emu_graph *g;
    CUresult r = graph_resolve(graph, &g);
    if (!r && !emu_obj_is(object, EMU_OBJ_USER_OBJECT))
        r = CUDA_ERROR_INVALID_VALUE;
    if (!r) {
        user_object *o = (user_object *)object;
        /* MOVE takes the caller's references; otherwise the graph takes new ones. */
        if (!(flags & CU_GRAPH_USER_OBJECT_MOVE)) {
            if (o->refs > INT32_MAX - (int)count)
                r = CUDA_ERROR_INVALID_VALUE;
            else
                o->refs += (int)count;
        }
        if (!r && users_add(&g->users, &g->nusers, o, count) != 0) {
            if (!(flags & CU_GRAPH_USER_OBJECT_MOVE))
                o->refs -= (int)count;
            r = CUDA_ERROR_OUT_OF_MEMORY;
        }
    }
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

CUresult CUDAAPI cuGraphReleaseUserObject(CUgraph graph, CUuserObject object, unsigned int count)
{
    if (count == 0)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&emu_graph_lock);
    emu_graph *g;
    CUresult r = graph_resolve(graph, &g);
    if (!r) {
        r = CUDA_ERROR_INVALID_VALUE;
        for (size_t i = 0; i < g->nusers; i++) {
            if (g->users[i].obj == (user_object *)object && g->users[i].count >= count) {
                g->users[i].count -= count;
                user_object_unref(g->users[i].obj, count);
                if (g->users[i].count == 0)
                    g->users[i] = g->users[--g->nusers];
                r = CUDA_SUCCESS;
                break;
            }
        }
    }
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

/* ---- graph memory ---- */

static _Atomic size_t graph_mem_used[EMU_MAX_DEVICES], graph_mem_high[EMU_MAX_DEVICES];

static int remove_graph_alloc(emu_alloc *a, void *arg)
{
    return a->owner == arg ? EMU_MEM_REMOVE : EMU_MEM_KEEP;
}

static void graph_alloc_unref(graph_alloc *ga)
{
    if (!ga || --ga->refs > 0)
        return;
    /* Only if the program did not free it (the address may belong to someone else by now). */
    emu_mem_update(remove_graph_alloc, ga);
    atomic_fetch_sub(&graph_mem_used[ga->dev], ga->size);
    free(ga);
}

static CUresult alloc_node_make(emu_graph_node *n, CUDA_MEM_ALLOC_NODE_PARAMS *p, emu_ctx *c)
{
    if (p->bytesize == 0 || p->poolProps.allocType != CU_MEM_ALLOCATION_TYPE_PINNED ||
        p->poolProps.location.type != CU_MEM_LOCATION_TYPE_DEVICE ||
        p->accessDescCount > EMU_MAX_DEVICES)
        return CUDA_ERROR_INVALID_VALUE;
    emu_device *d = emu_device_at(p->poolProps.location.id);
    if (!d)
        return CUDA_ERROR_INVALID_DEVICE;
    unsigned access = 1u << d->ordinal;
    for (size_t i = 0; i < p->accessDescCount; i++) {
        CUmemAccessDesc ad;
        if (emu_host_read(&ad, &p->accessDescs[i], sizeof ad) ||
            ad.location.type != CU_MEM_LOCATION_TYPE_DEVICE || !emu_device_at(ad.location.id))
            return CUDA_ERROR_INVALID_VALUE;
        n->u.alloc.access[i] = ad;
        if (ad.flags == CU_MEM_ACCESS_FLAGS_PROT_READWRITE)
            access |= 1u << ad.location.id;
    }
    graph_alloc *ga = calloc(1, sizeof *ga);
    if (!ga)
        return CUDA_ERROR_OUT_OF_MEMORY;
    ga->tag = EMU_OWNER_GRAPH_ALLOC;
    ga->refs = 1;
    ga->size = p->bytesize;
    ga->dev = d->ordinal;
    emu_alloc tmpl = {0};
    tmpl.ctx = c;
    tmpl.access_devs = access;
    tmpl.owner = ga;
    CUresult r = emu_mem_alloc_device(d, p->bytesize, &tmpl, &ga->addr);
    if (r) {
        free(ga);
        return r;
    }
    size_t used = atomic_fetch_add(&graph_mem_used[d->ordinal], p->bytesize) + p->bytesize;
    size_t high = atomic_load(&graph_mem_high[d->ordinal]);
    while (used > high && !atomic_compare_exchange_weak(&graph_mem_high[d->ordinal], &high, used))
        ;
    p->dptr = (CUdeviceptr)ga->addr;
    n->u.alloc.ga = ga;
    n->u.alloc.p = *p;
    n->u.alloc.p.accessDescs = n->u.alloc.access;
    return CUDA_SUCCESS;
}

static CUresult free_node_check(CUdeviceptr dptr)
{
    emu_alloc a;
    if (!emu_mem_lookup((uint64_t)dptr, &a) || a.addr != (uint64_t)dptr || !a.owner ||
        *(const int *)a.owner != EMU_OWNER_GRAPH_ALLOC)
        return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGraphMemTrim(CUdevice device)
{
    emu_device *d;
    return emu_device_resolve(device, &d); /* nothing held beyond what nodes use */
}

CUresult CUDAAPI cuDeviceGetGraphMemAttribute(CUdevice device, CUgraphMem_attribute attr,
                                              void *value)
{
    emu_device *d;
    CUresult r = emu_device_resolve(device, &d);
    if (r)
        return r;
    if (!value)
        return CUDA_ERROR_INVALID_VALUE;
    cuuint64_t v;
    switch (attr) {
    case CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT:
    case CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT:
        v = atomic_load(&graph_mem_used[device]);
        break;
    case CU_GRAPH_MEM_ATTR_USED_MEM_HIGH:
    case CU_GRAPH_MEM_ATTR_RESERVED_MEM_HIGH:
        v = atomic_load(&graph_mem_high[device]);
        break;
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
    return emu_host_write(value, &v, sizeof v);
}

CUresult CUDAAPI cuDeviceSetGraphMemAttribute(CUdevice device, CUgraphMem_attribute attr,
                                              void *value)
{
    emu_device *d;
    CUresult r = emu_device_resolve(device, &d);
    if (r)
        return r;
    cuuint64_t v;
    if (!value || emu_host_read(&v, value, sizeof v) || v != 0)
        return CUDA_ERROR_INVALID_VALUE; /* only resetting a high watermark is allowed */
    if (attr != CU_GRAPH_MEM_ATTR_USED_MEM_HIGH && attr != CU_GRAPH_MEM_ATTR_RESERVED_MEM_HIGH)
        return CUDA_ERROR_INVALID_VALUE;
    atomic_store(&graph_mem_high[device], atomic_load(&graph_mem_used[device]));
    return CUDA_SUCCESS;
}

/* ---- creating graphs and nodes ---- */

CUresult CUDAAPI cuGraphCreate(CUgraph *phGraph, unsigned int flags)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (!phGraph || flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&emu_graph_lock);
    emu_graph *g = graph_new(1);
    pthread_mutex_unlock(&emu_graph_lock);
    if (!g)
        return CUDA_ERROR_OUT_OF_MEMORY;
    *phGraph = (CUgraph)g;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuGraphDestroy(CUgraph hGraph)
{
    pthread_mutex_lock(&emu_graph_lock);
    emu_graph *g;
    CUresult r = graph_resolve(hGraph, &g);
    if (!r && g->owner)
        r = CUDA_ERROR_INVALID_VALUE; /* a child graph belongs to its node */
    if (!r) {
        for (struct emu_capture *cp = captures; cp; cp = cp->next)
            if (cp->graph == g)
                r = CUDA_ERROR_INVALID_VALUE; /* still being captured into */
    }
    if (!r)
        graph_free(g);
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

/* The common part of every cuGraphAdd*Node: graph and dependencies checked, a node made. On
 * success the lock is held and *out is the node (its parameters still to be set). */
static CUresult add_begin(CUgraphNode *phNode, CUgraph hGraph, const CUgraphNode *deps,
                          size_t ndeps, CUgraphNodeType type, emu_graph_node **out)
{
    if (!phNode)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&emu_graph_lock);
    emu_graph *g;
    emu_graph_node **d = NULL;
    CUresult r = graph_resolve(hGraph, &g);
    if (!r)
        r = read_deps(g, deps, ndeps, &d);
    if (r) {
        pthread_mutex_unlock(&emu_graph_lock);
        return r;
    }
    emu_graph_node *n = node_new(g, type, d, ndeps);
    free(d);
    if (!n) {
        pthread_mutex_unlock(&emu_graph_lock);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *out = n;
    return CUDA_SUCCESS;
}

/* Finishes an add: on failure the half-made node goes away. Releases the lock. */
static CUresult add_end(CUresult r, emu_graph_node *n, CUgraphNode *phNode)
{
    if (r) {
        emu_graph *g = n->graph;
        for (size_t i = 0; i < n->ndeps; i++)
            drop_node(n->deps[i]->outs, &n->deps[i]->nouts, n);
        drop_node(g->nodes, &g->nnodes, n);
        n->type = CU_GRAPH_NODE_TYPE_EMPTY; /* parameters were not set: nothing to free */
        node_free(n);
        free(g->order);
        g->order = NULL;
    } else {
        *phNode = (CUgraphNode)n;
    }
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

CUresult CUDAAPI cuGraphAddKernelNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                      const CUgraphNode *dependencies, size_t numDependencies,
                                      const CUDA_KERNEL_NODE_PARAMS *nodeParams)
{
    CUDA_KERNEL_NODE_PARAMS p;
    if (!nodeParams || emu_host_read(&p, nodeParams, sizeof p))
        return CUDA_ERROR_INVALID_VALUE;
    emu_graph_node *n;
    CUresult r = add_begin(phGraphNode, hGraph, dependencies, numDependencies,
                           CU_GRAPH_NODE_TYPE_KERNEL, &n);
    if (r)
        return r;
    return add_end(set_kernel_params(n, &p), n, phGraphNode);
}

CUresult CUDAAPI cuGraphAddMemcpyNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                      const CUgraphNode *dependencies, size_t numDependencies,
                                      const CUDA_MEMCPY3D *copyParams, CUcontext ctx)
{
    emu_graph_node *n;
    CUresult r = add_begin(phGraphNode, hGraph, dependencies, numDependencies,
                           CU_GRAPH_NODE_TYPE_MEMCPY, &n);
    if (r)
        return r;
    n->type = CU_GRAPH_NODE_TYPE_EMPTY; /* until its copy is set, there is nothing to release */
    r = set_memcpy_params(n, copyParams, ctx);
    if (!r)
        n->type = CU_GRAPH_NODE_TYPE_MEMCPY;
    return add_end(r, n, phGraphNode);
}

CUresult CUDAAPI cuGraphAddMemsetNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                      const CUgraphNode *dependencies, size_t numDependencies,
                                      const CUDA_MEMSET_NODE_PARAMS *memsetParams, CUcontext ctx)
{
    emu_graph_node *n;
    CUresult r = add_begin(phGraphNode, hGraph, dependencies, numDependencies,
                           CU_GRAPH_NODE_TYPE_MEMSET, &n);
    if (r)
        return r;
    return add_end(set_memset_params(n, memsetParams, ctx), n, phGraphNode);
}

CUresult CUDAAPI cuGraphAddHostNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                    const CUgraphNode *dependencies, size_t numDependencies,
                                    const CUDA_HOST_NODE_PARAMS *nodeParams)
{
    emu_graph_node *n;
    CUresult r = add_begin(phGraphNode, hGraph, dependencies, numDependencies,
                           CU_GRAPH_NODE_TYPE_HOST, &n);
    if (r)
        return r;
    return add_end(set_host_params(n, nodeParams), n, phGraphNode);
}

/* Whether g is child graph c or contains it (a graph may not embed itself). */
static int graph_contains(const emu_graph *g, const emu_graph *c)
{
    if (g == c)
        return 1;
    for (size_t i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->type == CU_GRAPH_NODE_TYPE_GRAPH &&
            graph_contains(g->nodes[i]->u.graph.child, c))
            return 1;
    return 0;
}

CUresult CUDAAPI cuGraphAddChildGraphNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                          const CUgraphNode *dependencies, size_t numDependencies,
                                          CUgraph childGraph)
{
    emu_graph_node *n;
    CUresult r = add_begin(phGraphNode, hGraph, dependencies, numDependencies,
                           CU_GRAPH_NODE_TYPE_EMPTY, &n);
    if (r)
        return r;
    emu_graph *child;
    r = graph_resolve(childGraph, &child);
    if (!r && graph_contains(child, n->graph))
        r = CUDA_ERROR_INVALID_VALUE;
    if (!r) {
        /* The node embeds a copy: later changes to childGraph do not reach it. */
        n->u.graph.child = graph_copy(child, 1, n);
        if (!n->u.graph.child)
            r = CUDA_ERROR_OUT_OF_MEMORY;
        else
            n->type = CU_GRAPH_NODE_TYPE_GRAPH;
    }
    return add_end(r, n, phGraphNode);
}

CUresult CUDAAPI cuGraphAddEmptyNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                     const CUgraphNode *dependencies, size_t numDependencies)
{
    emu_graph_node *n;
    CUresult r = add_begin(phGraphNode, hGraph, dependencies, numDependencies,
                           CU_GRAPH_NODE_TYPE_EMPTY, &n);
    if (r)
        return r;
    return add_end(CUDA_SUCCESS, n, phGraphNode);
}

static CUresult add_event_node(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *deps,
                               size_t ndeps, CUevent event, CUgraphNodeType type)
{
    CUresult r = check_event(event);
    if (r)
        return r;
    emu_graph_node *n;
    r = add_begin(phGraphNode, hGraph, deps, ndeps, type, &n);
    if (r)
        return r;
    n->u.event.event = event;
    return add_end(CUDA_SUCCESS, n, phGraphNode);
}

CUresult CUDAAPI cuGraphAddEventRecordNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                           const CUgraphNode *dependencies, size_t numDependencies,
                                           CUevent event)
{
    return add_event_node(phGraphNode, hGraph, dependencies, numDependencies, event,
                          CU_GRAPH_NODE_TYPE_EVENT_RECORD);
}

CUresult CUDAAPI cuGraphAddEventWaitNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                         const CUgraphNode *dependencies, size_t numDependencies,
                                         CUevent event)
{
    return add_event_node(phGraphNode, hGraph, dependencies, numDependencies, event,
                          CU_GRAPH_NODE_TYPE_WAIT_EVENT);
}

CUresult CUDAAPI cuGraphAddMemAllocNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                        const CUgraphNode *dependencies, size_t numDependencies,
                                        CUDA_MEM_ALLOC_NODE_PARAMS *nodeParams)
{
    CUDA_MEM_ALLOC_NODE_PARAMS p;
    if (!nodeParams || emu_host_read(&p, nodeParams, sizeof p))
        return CUDA_ERROR_INVALID_VALUE;
    emu_ctx *c;
    CUresult r = emu_ctx_current(&c);
    if (r)
        return r;
    emu_graph_node *n;
    r = add_begin(phGraphNode, hGraph, dependencies, numDependencies, CU_GRAPH_NODE_TYPE_EMPTY, &n);
    if (r)
        return r;
    r = alloc_node_make(n, &p, c);
    if (!r) {
        n->type = CU_GRAPH_NODE_TYPE_MEM_ALLOC;
        r = emu_host_write(&nodeParams->dptr, &p.dptr, sizeof p.dptr);
    }
    return add_end(r, n, phGraphNode);
}

CUresult CUDAAPI cuGraphAddMemFreeNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                       const CUgraphNode *dependencies, size_t numDependencies,
                                       CUdeviceptr dptr)
{
    CUresult r = free_node_check(dptr);
    if (r)
        return r;
    emu_graph_node *n;
    r = add_begin(phGraphNode, hGraph, dependencies, numDependencies, CU_GRAPH_NODE_TYPE_MEM_FREE,
                  &n);
    if (r)
        return r;
    n->u.free.dptr = dptr;
    return add_end(CUDA_SUCCESS, n, phGraphNode);
}

/* cuGraphAddNode with the generic parameter union: one of the typed adds. */
CUresult CUDAAPI cuGraphAddNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                const CUgraphNode *dependencies,
                                const CUgraphEdgeData *dependencyData, size_t numDependencies,
                                CUgraphNodeParams *nodeParams)
{
    CUgraphNodeParams p;
    if (!nodeParams || emu_host_read(&p, nodeParams, sizeof p))
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = check_edges(dependencyData, numDependencies);
    if (r)
        return r;
    switch (p.type) {
    case CU_GRAPH_NODE_TYPE_KERNEL: {
        CUDA_KERNEL_NODE_PARAMS k = {0};
        memcpy(&k, &p.kernel, sizeof k < sizeof p.kernel ? sizeof k : sizeof p.kernel);
        emu_graph_node *n;
        r = add_begin(phGraphNode, hGraph, dependencies, numDependencies, p.type, &n);
        if (r)
            return r;
        return add_end(set_kernel_params(n, &k), n, phGraphNode);
    }
    case CU_GRAPH_NODE_TYPE_MEMCPY:
        return cuGraphAddMemcpyNode(phGraphNode, hGraph, dependencies, numDependencies,
                                    &nodeParams->memcpy.copyParams, p.memcpy.copyCtx);
    case CU_GRAPH_NODE_TYPE_MEMSET: {
        CUDA_MEMSET_NODE_PARAMS m = {p.memset.dst, p.memset.pitch, p.memset.value,
                                     p.memset.elementSize, p.memset.width, p.memset.height};
        emu_graph_node *n;
        r = add_begin(phGraphNode, hGraph, dependencies, numDependencies, p.type, &n);
        if (r)
            return r;
        return add_end(set_memset_params(n, &m, p.memset.ctx), n, phGraphNode);
    }
    case CU_GRAPH_NODE_TYPE_HOST: {
        CUDA_HOST_NODE_PARAMS h = {p.host.fn, p.host.userData};
        emu_graph_node *n;
        r = add_begin(phGraphNode, hGraph, dependencies, numDependencies, p.type, &n);
        if (r)
            return r;
        return add_end(set_host_params(n, &h), n, phGraphNode);
    }
    case CU_GRAPH_NODE_TYPE_GRAPH:
        if (p.graph.ownership != CU_GRAPH_CHILD_GRAPH_OWNERSHIP_CLONE)
            return EMU_UNSUPPORTED("cuGraphAddNode of a child graph that is moved, not cloned");
        return cuGraphAddChildGraphNode(phGraphNode, hGraph, dependencies, numDependencies,
                                        p.graph.graph);
    case CU_GRAPH_NODE_TYPE_EMPTY:
        return cuGraphAddEmptyNode(phGraphNode, hGraph, dependencies, numDependencies);
    case CU_GRAPH_NODE_TYPE_EVENT_RECORD:
        return cuGraphAddEventRecordNode(phGraphNode, hGraph, dependencies, numDependencies,
                                         p.eventRecord.event);
    case CU_GRAPH_NODE_TYPE_WAIT_EVENT:
        return cuGraphAddEventWaitNode(phGraphNode, hGraph, dependencies, numDependencies,
                                       p.eventWait.event);
    case CU_GRAPH_NODE_TYPE_MEM_ALLOC:
        return cuGraphAddMemAllocNode(phGraphNode, hGraph, dependencies, numDependencies,
                                      (CUDA_MEM_ALLOC_NODE_PARAMS *)&nodeParams->alloc);
    case CU_GRAPH_NODE_TYPE_MEM_FREE:
        return cuGraphAddMemFreeNode(phGraphNode, hGraph, dependencies, numDependencies,
                                     p.free.dptr);
    case CU_GRAPH_NODE_TYPE_CONDITIONAL:
        return EMU_UNSUPPORTED("conditional graph nodes");
    case CU_GRAPH_NODE_TYPE_EXT_SEMAS_SIGNAL:
    case CU_GRAPH_NODE_TYPE_EXT_SEMAS_WAIT:
        return EMU_UNSUPPORTED("external semaphore graph nodes");
    case CU_GRAPH_NODE_TYPE_BATCH_MEM_OP:
        return EMU_UNSUPPORTED("batch memory operation graph nodes");
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
}

CUresult CUDAAPI cuGraphAddExternalSemaphoresSignalNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                                        const CUgraphNode *dependencies,
                                                        size_t numDependencies,
                                                        const CUDA_EXT_SEM_SIGNAL_NODE_PARAMS *p)
{
    (void)phGraphNode, (void)hGraph, (void)dependencies, (void)numDependencies, (void)p;
    return EMU_UNSUPPORTED("external semaphore graph nodes");
}

CUresult CUDAAPI cuGraphAddExternalSemaphoresWaitNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                                      const CUgraphNode *dependencies,
                                                      size_t numDependencies,
                                                      const CUDA_EXT_SEM_WAIT_NODE_PARAMS *p)
{
    (void)phGraphNode, (void)hGraph, (void)dependencies, (void)numDependencies, (void)p;
    return EMU_UNSUPPORTED("external semaphore graph nodes");
}

CUresult CUDAAPI cuGraphAddBatchMemOpNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                          const CUgraphNode *dependencies, size_t numDependencies,
                                          const CUDA_BATCH_MEM_OP_NODE_PARAMS *p)
{
    (void)phGraphNode, (void)hGraph, (void)dependencies, (void)numDependencies, (void)p;
    return EMU_UNSUPPORTED("batch memory operation graph nodes");
}

CUresult CUDAAPI cuGraphConditionalHandleCreate(CUgraphConditionalHandle *pHandle_out,
                                                CUgraph hGraph, CUcontext ctx,
                                                unsigned int defaultLaunchValue,
                                                unsigned int flags)
{
    (void)pHandle_out, (void)hGraph, (void)ctx, (void)defaultLaunchValue, (void)flags;
    return EMU_UNSUPPORTED("conditional graph nodes");
}

/* ---- node getters and setters ---- */

/* Resolves a node of the given type under the lock (held on success). */
static CUresult node_begin(CUgraphNode h, CUgraphNodeType type, emu_graph_node **out)
{
    pthread_mutex_lock(&emu_graph_lock);
    CUresult r = node_resolve(h, out);
    if (!r && (*out)->type != type)
        r = CUDA_ERROR_INVALID_VALUE;
    if (r)
        pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

static CUresult node_end(CUresult r)
{
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

CUresult CUDAAPI cuGraphKernelNodeGetParams(CUgraphNode hNode, CUDA_KERNEL_NODE_PARAMS *nodeParams)
{
    emu_graph_node *n;
    if (!nodeParams)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = node_begin(hNode, CU_GRAPH_NODE_TYPE_KERNEL, &n);
    if (r)
        return r;
    CUDA_KERNEL_NODE_PARAMS p;
    get_kernel_params(n, &p);
    return node_end(emu_host_write(nodeParams, &p, sizeof p));
}

CUresult CUDAAPI cuGraphKernelNodeSetParams(CUgraphNode hNode,
                                            const CUDA_KERNEL_NODE_PARAMS *nodeParams)
{
    CUDA_KERNEL_NODE_PARAMS p;
    if (!nodeParams || emu_host_read(&p, nodeParams, sizeof p))
        return CUDA_ERROR_INVALID_VALUE;
    emu_graph_node *n;
    CUresult r = node_begin(hNode, CU_GRAPH_NODE_TYPE_KERNEL, &n);
    if (r)
        return r;
    return node_end(set_kernel_params(n, &p));
}

CUresult CUDAAPI cuGraphMemcpyNodeGetParams(CUgraphNode hNode, CUDA_MEMCPY3D *nodeParams)
{
    emu_graph_node *n;
    if (!nodeParams)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = node_begin(hNode, CU_GRAPH_NODE_TYPE_MEMCPY, &n);
    if (r)
        return r;
    CUDA_MEMCPY3D d;
    emu_copy3d_to_desc(&n->u.memcpy.copy, &d);
    return node_end(emu_host_write(nodeParams, &d, sizeof d));
}

CUresult CUDAAPI cuGraphMemcpyNodeSetParams(CUgraphNode hNode, const CUDA_MEMCPY3D *nodeParams)
{
    emu_graph_node *n;
    CUresult r = node_begin(hNode, CU_GRAPH_NODE_TYPE_MEMCPY, &n);
    if (r)
        return r;
    return node_end(set_memcpy_params(n, nodeParams, n->u.memcpy.ctx));
}

CUresult CUDAAPI cuGraphMemsetNodeGetParams(CUgraphNode hNode, CUDA_MEMSET_NODE_PARAMS *nodeParams)
{
    emu_graph_node *n;
    if (!nodeParams)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = node_begin(hNode, CU_GRAPH_NODE_TYPE_MEMSET, &n);
    if (r)
        return r;
    return node_end(emu_host_write(nodeParams, &n->u.memset.p, sizeof n->u.memset.p));
}

CUresult CUDAAPI cuGraphMemsetNodeSetParams(CUgraphNode hNode,
                                            const CUDA_MEMSET_NODE_PARAMS *nodeParams)
{
    emu_graph_node *n;
    CUresult r = node_begin(hNode, CU_GRAPH_NODE_TYPE_MEMSET, &n);
    if (r)
        return r;
    return node_end(set_memset_params(n, nodeParams, n->u.memset.ctx));
}

CUresult CUDAAPI cuGraphHostNodeGetParams(CUgraphNode hNode, CUDA_HOST_NODE_PARAMS *nodeParams)
{
    emu_graph_node *n;
    if (!nodeParams)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = node_begin(hNode, CU_GRAPH_NODE_TYPE_HOST, &n);
    if (r)
        return r;
    CUDA_HOST_NODE_PARAMS p = {n->u.host.fn, n->u.host.user};
    return node_end(emu_host_write(nodeParams, &p, sizeof p));
}

CUresult CUDAAPI cuGraphHostNodeSetParams(CUgraphNode hNode, const CUDA_HOST_NODE_PARAMS *nodeParams)
{
    emu_graph_node *n;
    CUresult r = node_begin(hNode, CU_GRAPH_NODE_TYPE_HOST, &n);
    if (r)
        return r;
    return node_end(set_host_params(n, nodeParams));
}

CUresult CUDAAPI cuGraphChildGraphNodeGetGraph(CUgraphNode hNode, CUgraph *phGraph)
{
    emu_graph_node *n;
    if (!phGraph)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = node_begin(hNode, CU_GRAPH_NODE_TYPE_GRAPH, &n);
    if (r)
        return r;
    *phGraph = (CUgraph)n->u.graph.child;
    return node_end(CUDA_SUCCESS);
}

static CUresult event_node_get(CUgraphNode hNode, CUgraphNodeType type, CUevent *out)
{
    emu_graph_node *n;
    if (!out)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = node_begin(hNode, type, &n);
    if (r)
        return r;
    *out = n->u.event.event;
    return node_end(CUDA_SUCCESS);
}

static CUresult event_node_set(CUgraphNode hNode, CUgraphNodeType type, CUevent event)
{
    CUresult r = check_event(event);
    if (r)
        return r;
    emu_graph_node *n;
    r = node_begin(hNode, type, &n);
    if (r)
        return r;
    n->u.event.event = event;
    return node_end(CUDA_SUCCESS);
}

CUresult CUDAAPI cuGraphEventRecordNodeGetEvent(CUgraphNode hNode, CUevent *event_out)
{
    return event_node_get(hNode, CU_GRAPH_NODE_TYPE_EVENT_RECORD, event_out);
}

CUresult CUDAAPI cuGraphEventRecordNodeSetEvent(CUgraphNode hNode, CUevent event)
{
    return event_node_set(hNode, CU_GRAPH_NODE_TYPE_EVENT_RECORD, event);
}

CUresult CUDAAPI cuGraphEventWaitNodeGetEvent(CUgraphNode hNode, CUevent *event_out)
{
    return event_node_get(hNode, CU_GRAPH_NODE_TYPE_WAIT_EVENT, event_out);
}

CUresult CUDAAPI cuGraphEventWaitNodeSetEvent(CUgraphNode hNode, CUevent event)
{
    return event_node_set(hNode, CU_GRAPH_NODE_TYPE_WAIT_EVENT, event);
}

CUresult CUDAAPI cuGraphMemAllocNodeGetParams(CUgraphNode hNode,
                                              CUDA_MEM_ALLOC_NODE_PARAMS *params_out)
{
    emu_graph_node *n;
    if (!params_out)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = node_begin(hNode, CU_GRAPH_NODE_TYPE_MEM_ALLOC, &n);
    if (r)
        return r;
    return node_end(emu_host_write(params_out, &n->u.alloc.p, sizeof n->u.alloc.p));
}

CUresult CUDAAPI cuGraphMemFreeNodeGetParams(CUgraphNode hNode, CUdeviceptr *dptr_out)
{
    emu_graph_node *n;
    if (!dptr_out)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = node_begin(hNode, CU_GRAPH_NODE_TYPE_MEM_FREE, &n);
    if (r)
        return r;
    *dptr_out = n->u.free.dptr;
    return node_end(CUDA_SUCCESS);
}

CUresult CUDAAPI cuGraphNodeSetParams(CUgraphNode hNode, CUgraphNodeParams *nodeParams)
{
    CUgraphNodeParams p;
    if (!nodeParams || emu_host_read(&p, nodeParams, sizeof p))
        return CUDA_ERROR_INVALID_VALUE;
    switch (p.type) {
    case CU_GRAPH_NODE_TYPE_KERNEL: {
        CUDA_KERNEL_NODE_PARAMS k = {0};
        memcpy(&k, &p.kernel, sizeof k < sizeof p.kernel ? sizeof k : sizeof p.kernel);
        return cuGraphKernelNodeSetParams(hNode, &k);
    }
    case CU_GRAPH_NODE_TYPE_MEMCPY:
        return cuGraphMemcpyNodeSetParams(hNode, &nodeParams->memcpy.copyParams);
    case CU_GRAPH_NODE_TYPE_MEMSET: {
        CUDA_MEMSET_NODE_PARAMS m = {p.memset.dst, p.memset.pitch, p.memset.value,
                                     p.memset.elementSize, p.memset.width, p.memset.height};
        return cuGraphMemsetNodeSetParams(hNode, &m);
    }
    case CU_GRAPH_NODE_TYPE_HOST: {
        CUDA_HOST_NODE_PARAMS h = {p.host.fn, p.host.userData};
        return cuGraphHostNodeSetParams(hNode, &h);
    }
    case CU_GRAPH_NODE_TYPE_EVENT_RECORD:
        return cuGraphEventRecordNodeSetEvent(hNode, p.eventRecord.event);
    case CU_GRAPH_NODE_TYPE_WAIT_EVENT:
        return cuGraphEventWaitNodeSetEvent(hNode, p.eventWait.event);
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
}

/* Kernel node attributes: remembered for the getters (and cooperative honoured at launch). */
static CUlaunchAttribute *kernel_attr(emu_graph_node *n, CUkernelNodeAttrID id, int create)
{
    for (unsigned i = 0; i < n->u.kernel.nattrs; i++)
        if (n->u.kernel.attrs[i].id == id)
            return &n->u.kernel.attrs[i];
    if (!create || n->u.kernel.nattrs == MAX_NODE_ATTRS)
        return NULL;
    CUlaunchAttribute *a = &n->u.kernel.attrs[n->u.kernel.nattrs++];
    memset(a, 0, sizeof *a);
    a->id = id;
    return a;
}

static int kernel_attr_known(CUkernelNodeAttrID id)
{
    switch (id) {
    case CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW:
    case CU_LAUNCH_ATTRIBUTE_COOPERATIVE:
    case CU_LAUNCH_ATTRIBUTE_PRIORITY:
    case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN_MAP:
    case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN:
    case CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION:
    case CU_LAUNCH_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
    case CU_LAUNCH_ATTRIBUTE_DEVICE_UPDATABLE_KERNEL_NODE:
    case CU_LAUNCH_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
        return 1;
    default:
        return 0;
    }
}

CUresult CUDAAPI cuGraphKernelNodeGetAttribute(CUgraphNode hNode, CUkernelNodeAttrID attr,
                                               CUkernelNodeAttrValue *value_out)
{
    emu_graph_node *n;
    if (!value_out || !kernel_attr_known(attr))
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = node_begin(hNode, CU_GRAPH_NODE_TYPE_KERNEL, &n);
    if (r)
        return r;
    CUkernelNodeAttrValue v;
    memset(&v, 0, sizeof v);
    const CUlaunchAttribute *a = kernel_attr(n, attr, 0);
    if (a)
        memcpy(&v, &a->value, sizeof v);
    return node_end(emu_host_write(value_out, &v, sizeof v));
}

CUresult CUDAAPI cuGraphKernelNodeSetAttribute(CUgraphNode hNode, CUkernelNodeAttrID attr,
                                               const CUkernelNodeAttrValue *value)
{
    CUkernelNodeAttrValue v;
    if (!value || !kernel_attr_known(attr) || emu_host_read(&v, value, sizeof v))
        return CUDA_ERROR_INVALID_VALUE;
    if (attr == CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION &&
        (v.clusterDim.x > 1 || v.clusterDim.y > 1 || v.clusterDim.z > 1))
        return EMU_UNSUPPORTED("kernel nodes with a cluster dimension");
    emu_graph_node *n;
    CUresult r = node_begin(hNode, CU_GRAPH_NODE_TYPE_KERNEL, &n);
    if (r)
        return r;
    CUlaunchAttribute *a = kernel_attr(n, attr, 1);
    if (!a)
        return node_end(CUDA_ERROR_OUT_OF_MEMORY);
    memcpy(&a->value, &v, sizeof v);
    return node_end(CUDA_SUCCESS);
}

CUresult CUDAAPI cuGraphKernelNodeCopyAttributes(CUgraphNode dst, CUgraphNode src)
{
    emu_graph_node *d, *s;
    pthread_mutex_lock(&emu_graph_lock);
    CUresult r = node_resolve(dst, &d);
    if (!r)
        r = node_resolve(src, &s);
    if (!r && (d->type != CU_GRAPH_NODE_TYPE_KERNEL || s->type != CU_GRAPH_NODE_TYPE_KERNEL))
        r = CUDA_ERROR_INVALID_VALUE;
    if (!r) {
        memcpy(d->u.kernel.attrs, s->u.kernel.attrs, sizeof d->u.kernel.attrs);
        d->u.kernel.nattrs = s->u.kernel.nattrs;
    }
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

/* ---- graph structure queries ---- */

CUresult CUDAAPI cuGraphNodeGetType(CUgraphNode hNode, CUgraphNodeType *type)
{
    pthread_mutex_lock(&emu_graph_lock);
    emu_graph_node *n;
    CUresult r = node_resolve(hNode, &n);
    if (!r && !type)
        r = CUDA_ERROR_INVALID_VALUE;
    if (!r)
        *type = n->type;
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

/* Fills a caller's array with up to *count entries (the rest NULL), or only counts when out is
 * NULL; *count becomes the number written (or the total when counting). */
static CUresult list_out(emu_graph_node *const *v, size_t n, CUgraphNode *out, size_t *count)
{
    if (!count)
        return CUDA_ERROR_INVALID_VALUE;
    if (!out) {
        *count = n;
        return CUDA_SUCCESS;
    }
    size_t want = *count;
    for (size_t i = 0; i < want; i++) {
        CUgraphNode x = i < n ? (CUgraphNode)v[i] : NULL;
        if (emu_host_write(&out[i], &x, sizeof x))
            return CUDA_ERROR_INVALID_VALUE;
    }
    *count = want < n ? want : n;
    return CUDA_SUCCESS;
}

static CUresult zero_edges(CUgraphEdgeData *edges, size_t n)
{
    CUgraphEdgeData z;
    memset(&z, 0, sizeof z);
    for (size_t i = 0; edges && i < n; i++)
        if (emu_host_write(&edges[i], &z, sizeof z))
            return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuGraphGetNodes(CUgraph hGraph, CUgraphNode *nodes, size_t *numNodes)
{
    pthread_mutex_lock(&emu_graph_lock);
    emu_graph *g;
    CUresult r = graph_resolve(hGraph, &g);
    if (!r)
        r = list_out(g->nodes, g->nnodes, nodes, numNodes);
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

CUresult CUDAAPI cuGraphGetRootNodes(CUgraph hGraph, CUgraphNode *rootNodes, size_t *numRootNodes)
{
    pthread_mutex_lock(&emu_graph_lock);
    emu_graph *g;
    CUresult r = graph_resolve(hGraph, &g);
    if (!r) {
        emu_graph_node **roots = malloc((g->nnodes ? g->nnodes : 1) * sizeof *roots);
        size_t n = 0;
        if (!roots) {
            r = CUDA_ERROR_OUT_OF_MEMORY;
        } else {
            for (size_t i = 0; i < g->nnodes; i++)
                if (g->nodes[i]->ndeps == 0)
                    roots[n++] = g->nodes[i];
            r = list_out(roots, n, rootNodes, numRootNodes);
            free(roots);
        }
    }
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

CUresult CUDAAPI cuGraphGetEdges(CUgraph hGraph, CUgraphNode *from, CUgraphNode *to,
                                 CUgraphEdgeData *edgeData, size_t *numEdges)
{
    if (!numEdges || (!from) != (!to))
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&emu_graph_lock);
    emu_graph *g;
    CUresult r = graph_resolve(hGraph, &g);
    if (!r) {
        size_t total = 0;
        for (size_t i = 0; i < g->nnodes; i++)
            total += g->nodes[i]->ndeps;
        if (!from) {
            *numEdges = total;
        } else {
            size_t want = *numEdges, k = 0;
            for (size_t i = 0; i < g->nnodes && !r; i++) {
                emu_graph_node *n = g->nodes[i];
                for (size_t j = 0; j < n->ndeps && k < want && !r; j++, k++) {
                    CUgraphNode f = (CUgraphNode)n->deps[j], t = (CUgraphNode)n;
                    if (emu_host_write(&from[k], &f, sizeof f) || emu_host_write(&to[k], &t, sizeof t))
                        r = CUDA_ERROR_INVALID_VALUE;
                }
            }
            for (size_t i = k; i < want && !r; i++) {
                CUgraphNode z = NULL;
                if (emu_host_write(&from[i], &z, sizeof z) || emu_host_write(&to[i], &z, sizeof z))
                    r = CUDA_ERROR_INVALID_VALUE;
            }
            if (!r)
                r = zero_edges(edgeData, k);
            *numEdges = k;
        }
    }
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

static CUresult node_list(CUgraphNode hNode, int outs, CUgraphNode *list, CUgraphEdgeData *edges,
                          size_t *count)
{
    pthread_mutex_lock(&emu_graph_lock);
    emu_graph_node *n;
    CUresult r = node_resolve(hNode, &n);
    if (!r)
        r = outs ? list_out(n->outs, n->nouts, list, count) : list_out(n->deps, n->ndeps, list, count);
    if (!r && list)
        r = zero_edges(edges, *count);
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

CUresult CUDAAPI cuGraphNodeGetDependencies(CUgraphNode hNode, CUgraphNode *dependencies,
                                            CUgraphEdgeData *edgeData, size_t *numDependencies)
{
    return node_list(hNode, 0, dependencies, edgeData, numDependencies);
}

CUresult CUDAAPI cuGraphNodeGetDependentNodes(CUgraphNode hNode, CUgraphNode *dependentNodes,
                                              CUgraphEdgeData *edgeData, size_t *numDependentNodes)
{
    return node_list(hNode, 1, dependentNodes, edgeData, numDependentNodes);
}

/* Reads the two edge arrays and checks every pair is a pair of distinct nodes of g. */
static CUresult read_edges(emu_graph *g, const CUgraphNode *from, const CUgraphNode *to, size_t n,
                           emu_graph_node ***f, emu_graph_node ***t)
{
    CUresult r = read_deps(g, from, n, f);
    if (r)
        return r;
    r = read_deps(g, to, n, t);
    if (r) {
        free(*f);
        return r;
    }
    for (size_t i = 0; i < n; i++) {
        if ((*f)[i] == (*t)[i]) {
            free(*f);
            free(*t);
            return CUDA_ERROR_INVALID_VALUE;
        }
    }
    return CUDA_SUCCESS;
}

/* The common start of adding and removing edges: checks, then the lock held (in every case) and
 * the edge arrays read. */
static CUresult edges_begin(CUgraph hGraph, const CUgraphNode *from, const CUgraphNode *to,
                            const CUgraphEdgeData *edgeData, size_t n, emu_graph **g,
                            emu_graph_node ***f, emu_graph_node ***t)
{
    *g = NULL;
    *f = *t = NULL;
    CUresult r = check_edges(edgeData, n);
    pthread_mutex_lock(&emu_graph_lock);
    if (!r)
        r = graph_resolve(hGraph, g);
    if (!r)
        r = read_edges(*g, from, to, n, f, t);
    return r;
}

static CUresult edges_end(CUresult r, emu_graph *g, emu_graph_node **f, emu_graph_node **t)
{
    if (g) {
        free(g->order);
        g->order = NULL;
    }
    free(f);
    free(t);
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

CUresult CUDAAPI cuGraphAddDependencies(CUgraph hGraph, const CUgraphNode *from,
                                        const CUgraphNode *to, const CUgraphEdgeData *edgeData,
                                        size_t numDependencies)
{
    emu_graph *g;
    emu_graph_node **f, **t;
    CUresult r = edges_begin(hGraph, from, to, edgeData, numDependencies, &g, &f, &t);
    for (size_t i = 0; !r && i < numDependencies; i++) {
        if (has_node(t[i]->deps, t[i]->ndeps, f[i])) {
            r = CUDA_ERROR_INVALID_VALUE; /* already there */
        } else if (reaches(g, t[i], f[i])) {
            r = CUDA_ERROR_INVALID_VALUE; /* would close a cycle */
        } else if (push_node(&t[i]->deps, &t[i]->ndeps, &t[i]->depcap, f[i]) != 0) {
            r = CUDA_ERROR_OUT_OF_MEMORY;
        } else if (push_node(&f[i]->outs, &f[i]->nouts, &f[i]->outcap, t[i]) != 0) {
            t[i]->ndeps--;
            r = CUDA_ERROR_OUT_OF_MEMORY;
        }
    }
    return edges_end(r, g, f, t);
}

CUresult CUDAAPI cuGraphRemoveDependencies(CUgraph hGraph, const CUgraphNode *from,
                                           const CUgraphNode *to, const CUgraphEdgeData *edgeData,
                                           size_t numDependencies)
{
    emu_graph *g;
    emu_graph_node **f, **t;
    CUresult r = edges_begin(hGraph, from, to, edgeData, numDependencies, &g, &f, &t);
    for (size_t i = 0; !r && i < numDependencies; i++)
        if (!has_node(t[i]->deps, t[i]->ndeps, f[i]))
            r = CUDA_ERROR_INVALID_VALUE;
    for (size_t i = 0; !r && i < numDependencies; i++) {
        drop_node(t[i]->deps, &t[i]->ndeps, f[i]);
        drop_node(f[i]->outs, &f[i]->nouts, t[i]);
    }
    return edges_end(r, g, f, t);
}

CUresult CUDAAPI cuGraphDestroyNode(CUgraphNode hNode)
{
    pthread_mutex_lock(&emu_graph_lock);
    emu_graph_node *n;
    CUresult r = node_resolve(hNode, &n);
    if (!r) {
        emu_graph *g = n->graph;
        for (size_t i = 0; i < n->ndeps; i++)
            drop_node(n->deps[i]->outs, &n->deps[i]->nouts, n);
        for (size_t i = 0; i < n->nouts; i++)
            drop_node(n->outs[i]->deps, &n->outs[i]->ndeps, n);
        drop_node(g->nodes, &g->nnodes, n);
        /* A capture whose streams depend on the node forgets it. */
        for (struct emu_capture *cp = captures; cp; cp = cp->next)
            for (size_t k = 0; k < cp->nmembers; k++)
                drop_node(cp->members[k]->cap_deps, &cp->members[k]->cap_ndeps, n);
        free(g->order);
        g->order = NULL;
        node_free(n);
    }
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

CUresult CUDAAPI cuGraphClone(CUgraph *phGraphClone, CUgraph originalGraph)
{
    if (!phGraphClone)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&emu_graph_lock);
    emu_graph *g;
    CUresult r = graph_resolve(originalGraph, &g);
    if (!r) {
        emu_graph *c = graph_copy(g, 1, NULL);
        if (!c) {
            r = CUDA_ERROR_OUT_OF_MEMORY;
        } else {
            /* The clone holds its own references to the graph's user objects. */
            for (size_t i = 0; i < g->nusers && !r; i++) {
                if (users_add(&c->users, &c->nusers, g->users[i].obj, g->users[i].count) != 0)
                    r = CUDA_ERROR_OUT_OF_MEMORY;
                else
                    g->users[i].obj->refs += (int)g->users[i].count;
            }
            if (r)
                graph_free(c);
            else
                *phGraphClone = (CUgraph)c;
        }
    }
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

static emu_graph_node *find_clone(emu_graph *g, const emu_graph_node *orig)
{
    for (size_t i = 0; i < g->nnodes; i++) {
        if (g->nodes[i]->origin == orig)
            return g->nodes[i];
        if (g->nodes[i]->type == CU_GRAPH_NODE_TYPE_GRAPH) {
            emu_graph_node *m = find_clone(g->nodes[i]->u.graph.child, orig);
            if (m)
                return m;
        }
    }
    return NULL;
}

CUresult CUDAAPI cuGraphNodeFindInClone(CUgraphNode *phNode, CUgraphNode hOriginalNode,
                                        CUgraph hClonedGraph)
{
    if (!phNode)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&emu_graph_lock);
    emu_graph *g;
    emu_graph_node *o;
    CUresult r = graph_resolve(hClonedGraph, &g);
    if (!r)
        r = node_resolve(hOriginalNode, &o);
    if (!r) {
        emu_graph_node *m = find_clone(g, o);
        if (m)
            *phNode = (CUgraphNode)m;
        else
            r = CUDA_ERROR_INVALID_VALUE;
    }
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

static const char *type_name(CUgraphNodeType t)
{
    switch (t) {
    case CU_GRAPH_NODE_TYPE_KERNEL: return "KERNEL";
    case CU_GRAPH_NODE_TYPE_MEMCPY: return "MEMCPY";
    case CU_GRAPH_NODE_TYPE_MEMSET: return "MEMSET";
    case CU_GRAPH_NODE_TYPE_HOST: return "HOST";
    case CU_GRAPH_NODE_TYPE_GRAPH: return "GRAPH";
    case CU_GRAPH_NODE_TYPE_EMPTY: return "EMPTY";
    case CU_GRAPH_NODE_TYPE_WAIT_EVENT: return "WAIT_EVENT";
    case CU_GRAPH_NODE_TYPE_EVENT_RECORD: return "EVENT_RECORD";
    case CU_GRAPH_NODE_TYPE_MEM_ALLOC: return "MEM_ALLOC";
    case CU_GRAPH_NODE_TYPE_MEM_FREE: return "MEM_FREE";
    default: return "OTHER";
    }
}

static void dot_graph(FILE *f, const emu_graph *g, const char *prefix)
{
    for (size_t i = 0; i < g->nnodes; i++) {
        const emu_graph_node *n = g->nodes[i];
        const char *label = type_name(n->type);
        const char *name = "";
        if (n->type == CU_GRAPH_NODE_TYPE_KERNEL) {
            const ptx_kernel *k = emu_launch_layout(n->u.kernel.handle);
            name = k ? ptx_kernel_name(k) : "";
        }
        fprintf(f, "  \"%s%llu\" [label=\"%llu %s %s\"];\n", prefix, n->id, n->id, label, name);
        for (size_t j = 0; j < n->ndeps; j++)
            fprintf(f, "  \"%s%llu\" -> \"%s%llu\";\n", prefix, n->deps[j]->id, prefix, n->id);
        if (n->type == CU_GRAPH_NODE_TYPE_GRAPH) {
            char sub[128];
            snprintf(sub, sizeof sub, "%s%llu_", prefix, n->id);
            dot_graph(f, n->u.graph.child, sub);
        }
    }
}

CUresult CUDAAPI cuGraphDebugDotPrint(CUgraph hGraph, const char *path, unsigned int flags)
{
    (void)flags;
    if (!path)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&emu_graph_lock);
    emu_graph *g;
    CUresult r = graph_resolve(hGraph, &g);
    if (!r) {
        FILE *f = fopen(path, "w");
        if (!f) {
            r = CUDA_ERROR_OPERATING_SYSTEM;
        } else {
            fprintf(f, "digraph vgpu_graph {\n");
            dot_graph(f, g, "n");
            fprintf(f, "}\n");
            if (fclose(f) != 0)
                r = CUDA_ERROR_OPERATING_SYSTEM;
        }
    }
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

/* ---- instantiation and launch ---- */

/* Computes the topological order of g and its child graphs; CUDA_ERROR_INVALID_VALUE on a cycle. */
static CUresult prepare_orders(emu_graph *g)
{
    if (!topo_order(g))
        return g->nnodes ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
    for (size_t i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->type == CU_GRAPH_NODE_TYPE_GRAPH) {
            CUresult r = prepare_orders(g->nodes[i]->u.graph.child);
            if (r)
                return r;
        }
    return CUDA_SUCCESS;
}

static CUresult instantiate(emu_graph *g, unsigned long long flags, emu_graph_exec **out)
{
    if (flags & CUDA_GRAPH_INSTANTIATE_FLAG_DEVICE_LAUNCH)
        return EMU_UNSUPPORTED("device-launchable graphs");
    if (flags & ~(unsigned long long)(CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH |
                                      CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD |
                                      CUDA_GRAPH_INSTANTIATE_FLAG_USE_NODE_PRIORITY))
        return CUDA_ERROR_INVALID_VALUE;
    emu_graph_exec *x = calloc(1, sizeof *x);
    if (!x)
        return CUDA_ERROR_OUT_OF_MEMORY;
    x->flags = flags;
    x->g = graph_copy(g, 0, NULL);
    CUresult r = x->g ? prepare_orders(x->g) : CUDA_ERROR_OUT_OF_MEMORY;
    for (size_t i = 0; !r && i < g->nusers; i++) {
        if (users_add(&x->users, &x->nusers, g->users[i].obj, g->users[i].count) != 0)
            r = CUDA_ERROR_OUT_OF_MEMORY;
        else
            g->users[i].obj->refs += (int)g->users[i].count;
    }
    if (!r && emu_obj_add(x, EMU_OBJ_GRAPH_EXEC) != 0)
        r = CUDA_ERROR_OUT_OF_MEMORY;
    if (r) {
        if (x->g)
            graph_free(x->g);
        user_objects_release(x->users, x->nusers);
        free(x->users);
        free(x);
        return r;
    }
    *out = x;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuGraphInstantiateWithFlags(CUgraphExec *phGraphExec, CUgraph hGraph,
                                             unsigned long long flags)
{
    if (!phGraphExec)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&emu_graph_lock);
    emu_graph *g;
    emu_graph_exec *x = NULL;
    CUresult r = graph_resolve(hGraph, &g);
    if (!r)
        r = instantiate(g, flags, &x);
    if (!r)
        *phGraphExec = (CUgraphExec)x;
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

CUresult CUDAAPI cuGraphInstantiateWithParams(CUgraphExec *phGraphExec, CUgraph hGraph,
                                              CUDA_GRAPH_INSTANTIATE_PARAMS *instantiateParams)
{
    CUDA_GRAPH_INSTANTIATE_PARAMS p;
    if (!instantiateParams || emu_host_read(&p, instantiateParams, sizeof p))
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = cuGraphInstantiateWithFlags(phGraphExec, hGraph, p.flags);
    p.hErrNode_out = NULL;
    p.result_out = r == CUDA_SUCCESS ? CUDA_GRAPH_INSTANTIATE_SUCCESS
                   : r == CUDA_ERROR_NOT_SUPPORTED ? CUDA_GRAPH_INSTANTIATE_NODE_OPERATION_NOT_SUPPORTED
                                                   : CUDA_GRAPH_INSTANTIATE_ERROR;
    emu_host_write(instantiateParams, &p, sizeof p);
    if (r == CUDA_SUCCESS && (p.flags & CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD) && p.hUploadStream)
        r = cuGraphUpload(*phGraphExec, p.hUploadStream);
    return r;
}

CUresult CUDAAPI cuGraphExecGetFlags(CUgraphExec hGraphExec, cuuint64_t *flags)
{
    if (!flags)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&emu_graph_lock);
    emu_graph_exec *x;
    CUresult r = exec_resolve(hGraphExec, &x);
    if (!r)
        *flags = x->flags;
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

CUresult CUDAAPI cuGraphExecDestroy(CUgraphExec hGraphExec)
{
    pthread_mutex_lock(&emu_graph_lock);
    emu_graph_exec *x;
    CUresult r = exec_resolve(hGraphExec, &x);
    if (!r) {
        emu_obj_del(x);
        graph_free(x->g);
        user_objects_release(x->users, x->nusers);
        free(x->users);
        free(x);
    }
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

/* Queues graph g's work on stream s of c, in topological order. Caller holds the lock. */
static CUresult launch_graph(emu_graph *g, emu_ctx *c, emu_stream *s)
{
    emu_graph_node **order = topo_order(g);
    if (!order && g->nnodes)
        return CUDA_ERROR_INVALID_VALUE;
    for (size_t i = 0; i < g->nnodes; i++) {
        emu_graph_node *n = order[i];
        emu_op *op = NULL;
        CUresult r = CUDA_SUCCESS;
        if (!n->enabled)
            continue;
        switch (n->type) {
        case CU_GRAPH_NODE_TYPE_KERNEL: {
            emu_func *f;
            int is_kernel;
            r = emu_launch_func(n->u.kernel.handle, c, &f, &is_kernel);
            if (r)
                return r;
            const CUlaunchAttribute *coop = kernel_attr(n, CU_LAUNCH_ATTRIBUTE_COOPERATIVE, 0);
            r = emu_launch_build(f, is_kernel, n->u.kernel.handle, n->u.kernel.grid,
                                 n->u.kernel.block, n->u.kernel.shared, NULL, NULL,
                                 n->u.kernel.params, coop && coop->value.cooperative, &op);
            break;
        }
        case CU_GRAPH_NODE_TYPE_MEMCPY:
            r = emu_copy3d_check(&n->u.memcpy.copy);
            if (r)
                return r;
            op = calloc(1, sizeof *op);
            if (!op)
                return CUDA_ERROR_OUT_OF_MEMORY;
            op->kind = EMU_OP_COPY3D;
            op->u.copy3d = n->u.memcpy.copy;
            emu_copy3d_retain(&op->u.copy3d);
            break;
        case CU_GRAPH_NODE_TYPE_MEMSET: {
            const CUDA_MEMSET_NODE_PARAMS *p = &n->u.memset.p;
            size_t span = (p->height - 1) * p->pitch + p->width * p->elementSize;
            if (!emu_mem_translate(c, p->dst, span) || !emu_mem_is_device(c, p->dst))
                return CUDA_ERROR_INVALID_VALUE;
            op = calloc(1, sizeof *op);
            if (!op)
                return CUDA_ERROR_OUT_OF_MEMORY;
            op->kind = EMU_OP_MEMSET;
            op->u.memset.dst = p->dst;
            op->u.memset.pitch = p->pitch;
            op->u.memset.width = p->width;
            op->u.memset.height = p->height;
            op->u.memset.value = p->value;
            op->u.memset.elem_size = (int)p->elementSize;
            break;
        }
        case CU_GRAPH_NODE_TYPE_HOST:
            op = calloc(1, sizeof *op);
            if (!op)
                return CUDA_ERROR_OUT_OF_MEMORY;
            op->kind = EMU_OP_HOSTFN;
            op->u.hostfn.fn = n->u.host.fn;
            op->u.hostfn.user = n->u.host.user;
            break;
        case CU_GRAPH_NODE_TYPE_GRAPH:
            r = launch_graph(n->u.graph.child, c, s);
            break;
        case CU_GRAPH_NODE_TYPE_EVENT_RECORD:
        case CU_GRAPH_NODE_TYPE_WAIT_EVENT: {
            emu_event *e;
            r = emu_event_resolve(n->u.event.event, &e);
            if (r)
                return CUDA_ERROR_INVALID_VALUE;
            r = n->type == CU_GRAPH_NODE_TYPE_EVENT_RECORD ? emu_event_record_submit(e, c, s)
                                                           : emu_event_wait_submit(e, c, s);
            break;
        }
        default:
            break; /* empty, and memory nodes (their memory exists from the node's creation) */
        }
        if (r) {
            emu_op_free(op);
            return r;
        }
        if (op)
            emu_ctx_enqueue(c, s, op);
    }
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream)
{
    emu_ctx *c;
    emu_stream *s;
    CUresult r = emu_stream_resolve(hStream, &c, &s);
    if (r)
        return r;
    pthread_mutex_lock(&emu_graph_lock);
    emu_graph_exec *x;
    r = exec_resolve(hGraphExec, &x);
    if (!r && s && s->capture)
        r = EMU_UNSUPPORTED("cuGraphLaunch into a capturing stream");
    if (!r)
        r = launch_graph(x->g, c, s);
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

CUresult CUDAAPI cuGraphUpload(CUgraphExec hGraphExec, CUstream hStream)
{
    emu_ctx *c;
    emu_stream *s;
    CUresult r = emu_stream_resolve(hStream, &c, &s);
    if (r)
        return r;
    pthread_mutex_lock(&emu_graph_lock);
    emu_graph_exec *x;
    r = exec_resolve(hGraphExec, &x); /* nothing to upload: work is made at launch */
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

/* ---- updating executable graphs ---- */

/* Resolves an exec and its node copied from hNode, of the given type; lock held on success. */
static CUresult exec_node_begin(CUgraphExec hGraphExec, CUgraphNode hNode, CUgraphNodeType type,
                                emu_graph_node **out)
{
    pthread_mutex_lock(&emu_graph_lock);
    emu_graph_exec *x;
    emu_graph_node *h;
    CUresult r = exec_resolve(hGraphExec, &x);
    if (!r)
        r = node_resolve(hNode, &h);
    if (!r) {
        *out = exec_find(x->g, h);
        if (!*out || (*out)->type != type)
            r = CUDA_ERROR_INVALID_VALUE;
    }
    if (r)
        pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

CUresult CUDAAPI cuGraphExecKernelNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode,
                                                const CUDA_KERNEL_NODE_PARAMS *nodeParams)
{
    CUDA_KERNEL_NODE_PARAMS p;
    if (!nodeParams || emu_host_read(&p, nodeParams, sizeof p))
        return CUDA_ERROR_INVALID_VALUE;
    emu_graph_node *n;
    CUresult r = exec_node_begin(hGraphExec, hNode, CU_GRAPH_NODE_TYPE_KERNEL, &n);
    if (r)
        return r;
    return node_end(set_kernel_params(n, &p));
}

CUresult CUDAAPI cuGraphExecMemcpyNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode,
                                                const CUDA_MEMCPY3D *copyParams, CUcontext ctx)
{
    emu_graph_node *n;
    CUresult r = exec_node_begin(hGraphExec, hNode, CU_GRAPH_NODE_TYPE_MEMCPY, &n);
    if (r)
        return r;
    return node_end(set_memcpy_params(n, copyParams, ctx));
}

CUresult CUDAAPI cuGraphExecMemsetNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode,
                                                const CUDA_MEMSET_NODE_PARAMS *memsetParams,
                                                CUcontext ctx)
{
    emu_graph_node *n;
    CUresult r = exec_node_begin(hGraphExec, hNode, CU_GRAPH_NODE_TYPE_MEMSET, &n);
    if (r)
        return r;
    return node_end(set_memset_params(n, memsetParams, ctx));
}

CUresult CUDAAPI cuGraphExecHostNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode,
                                              const CUDA_HOST_NODE_PARAMS *nodeParams)
{
    emu_graph_node *n;
    CUresult r = exec_node_begin(hGraphExec, hNode, CU_GRAPH_NODE_TYPE_HOST, &n);
    if (r)
        return r;
    return node_end(set_host_params(n, nodeParams));
}

static CUresult exec_event_set(CUgraphExec hGraphExec, CUgraphNode hNode, CUgraphNodeType type,
                               CUevent event)
{
    CUresult r = check_event(event);
    if (r)
        return r;
    emu_graph_node *n;
    r = exec_node_begin(hGraphExec, hNode, type, &n);
    if (r)
        return r;
    n->u.event.event = event;
    return node_end(CUDA_SUCCESS);
}

CUresult CUDAAPI cuGraphExecEventRecordNodeSetEvent(CUgraphExec hGraphExec, CUgraphNode hNode,
                                                    CUevent event)
{
    return exec_event_set(hGraphExec, hNode, CU_GRAPH_NODE_TYPE_EVENT_RECORD, event);
}

CUresult CUDAAPI cuGraphExecEventWaitNodeSetEvent(CUgraphExec hGraphExec, CUgraphNode hNode,
                                                  CUevent event)
{
    return exec_event_set(hGraphExec, hNode, CU_GRAPH_NODE_TYPE_WAIT_EVENT, event);
}

/* Whether two graphs have the same shape: node count, types and edges, child graphs too. On a
 * difference, *bad is the node of b where it shows and *why the update result. */
static int same_topology(emu_graph *a, emu_graph *b, emu_graph_node **bad,
                         CUgraphExecUpdateResult *why)
{
    index_nodes(a);
    index_nodes(b);
    if (a->nnodes != b->nnodes) {
        *bad = NULL;
        *why = CU_GRAPH_EXEC_UPDATE_ERROR_TOPOLOGY_CHANGED;
        return 0;
    }
    for (size_t i = 0; i < a->nnodes; i++) {
        const emu_graph_node *x = a->nodes[i], *y = b->nodes[i];
        if (x->type != y->type) {
            *bad = (emu_graph_node *)y;
            *why = CU_GRAPH_EXEC_UPDATE_ERROR_NODE_TYPE_CHANGED;
            return 0;
        }
        if (x->ndeps != y->ndeps) {
            *bad = (emu_graph_node *)y;
            *why = CU_GRAPH_EXEC_UPDATE_ERROR_TOPOLOGY_CHANGED;
            return 0;
        }
        for (size_t k = 0; k < x->ndeps; k++) {
            if (x->deps[k]->idx != y->deps[k]->idx) {
                *bad = (emu_graph_node *)y;
                *why = CU_GRAPH_EXEC_UPDATE_ERROR_TOPOLOGY_CHANGED;
                return 0;
            }
        }
        if (x->type == CU_GRAPH_NODE_TYPE_GRAPH &&
            !same_topology(x->u.graph.child, y->u.graph.child, bad, why))
            return 0;
        if (x->type == CU_GRAPH_NODE_TYPE_MEMCPY &&
            (x->u.memcpy.copy.src.kind != y->u.memcpy.copy.src.kind ||
             x->u.memcpy.copy.dst.kind != y->u.memcpy.copy.dst.kind)) {
            *bad = (emu_graph_node *)y;
            *why = CU_GRAPH_EXEC_UPDATE_ERROR_PARAMETERS_CHANGED;
            return 0;
        }
        if ((x->type == CU_GRAPH_NODE_TYPE_MEM_ALLOC || x->type == CU_GRAPH_NODE_TYPE_MEM_FREE) &&
            memcmp(&x->u, &y->u, sizeof x->u) != 0) {
            *bad = (emu_graph_node *)y;
            *why = CU_GRAPH_EXEC_UPDATE_ERROR_UNSUPPORTED_FUNCTION_CHANGE;
            return 0;
        }
    }
    return 1;
}

/* Copies b's parameters into exec graph a (same topology); a's nodes then answer to b's. */
static CUresult update_params(emu_graph *a, emu_graph *b)
{
    for (size_t i = 0; i < a->nnodes; i++) {
        emu_graph_node *x = a->nodes[i], *y = b->nodes[i];
        x->updated_from = y;
        CUresult r = CUDA_SUCCESS;
        switch (x->type) {
        case CU_GRAPH_NODE_TYPE_KERNEL: {
            emu_graph_node tmp = *x;
            tmp.type = CU_GRAPH_NODE_TYPE_KERNEL;
            r = node_copy_params(&tmp, y);
            if (!r) {
                free(x->u.kernel.params);
                free(x->u.kernel.param_ptrs);
                x->u.kernel = tmp.u.kernel;
            }
            break;
        }
        case CU_GRAPH_NODE_TYPE_MEMCPY:
            emu_copy3d_retain(&y->u.memcpy.copy);
            emu_copy3d_release(&x->u.memcpy.copy);
            x->u.memcpy = y->u.memcpy;
            break;
        case CU_GRAPH_NODE_TYPE_MEMSET:
            x->u.memset = y->u.memset;
            break;
        case CU_GRAPH_NODE_TYPE_HOST:
            x->u.host = y->u.host;
            break;
        case CU_GRAPH_NODE_TYPE_EVENT_RECORD:
        case CU_GRAPH_NODE_TYPE_WAIT_EVENT:
            x->u.event = y->u.event;
            break;
        case CU_GRAPH_NODE_TYPE_GRAPH:
            r = update_params(x->u.graph.child, y->u.graph.child);
            break;
        default:
            break;
        }
        if (r)
            return r;
    }
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuGraphExecUpdate(CUgraphExec hGraphExec, CUgraph hGraph,
                                   CUgraphExecUpdateResultInfo *resultInfo)
{
    pthread_mutex_lock(&emu_graph_lock);
    emu_graph_exec *x;
    emu_graph *g;
    CUresult r = exec_resolve(hGraphExec, &x);
    if (!r)
        r = graph_resolve(hGraph, &g);
    CUgraphExecUpdateResultInfo info = {CU_GRAPH_EXEC_UPDATE_SUCCESS, NULL, NULL};
    if (!r) {
        emu_graph_node *bad = NULL;
        CUgraphExecUpdateResult why = CU_GRAPH_EXEC_UPDATE_SUCCESS;
        if (!same_topology(x->g, g, &bad, &why)) {
            info.result = why;
            info.errorNode = (CUgraphNode)bad;
            r = CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE;
        } else if ((r = update_params(x->g, g)) != CUDA_SUCCESS) {
            info.result = CU_GRAPH_EXEC_UPDATE_ERROR;
        }
    }
    pthread_mutex_unlock(&emu_graph_lock);
    if (resultInfo && emu_host_write(resultInfo, &info, sizeof info))
        return CUDA_ERROR_INVALID_VALUE;
    return r;
}

CUresult CUDAAPI cuGraphExecChildGraphNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode,
                                                    CUgraph childGraph)
{
    emu_graph_node *n;
    CUresult r = exec_node_begin(hGraphExec, hNode, CU_GRAPH_NODE_TYPE_GRAPH, &n);
    if (r)
        return r;
    emu_graph *c;
    r = graph_resolve(childGraph, &c);
    emu_graph_node *bad;
    CUgraphExecUpdateResult why;
    if (!r && !same_topology(n->u.graph.child, c, &bad, &why))
        r = CUDA_ERROR_INVALID_VALUE;
    if (!r)
        r = update_params(n->u.graph.child, c);
    return node_end(r);
}

CUresult CUDAAPI cuGraphExecNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode,
                                          CUgraphNodeParams *nodeParams)
{
    CUgraphNodeParams p;
    if (!nodeParams || emu_host_read(&p, nodeParams, sizeof p))
        return CUDA_ERROR_INVALID_VALUE;
    switch (p.type) {
    case CU_GRAPH_NODE_TYPE_KERNEL: {
        CUDA_KERNEL_NODE_PARAMS k = {0};
        memcpy(&k, &p.kernel, sizeof k < sizeof p.kernel ? sizeof k : sizeof p.kernel);
        return cuGraphExecKernelNodeSetParams(hGraphExec, hNode, &k);
    }
    case CU_GRAPH_NODE_TYPE_MEMCPY:
        return cuGraphExecMemcpyNodeSetParams(hGraphExec, hNode, &nodeParams->memcpy.copyParams,
                                              p.memcpy.copyCtx);
    case CU_GRAPH_NODE_TYPE_MEMSET: {
        CUDA_MEMSET_NODE_PARAMS m = {p.memset.dst, p.memset.pitch, p.memset.value,
                                     p.memset.elementSize, p.memset.width, p.memset.height};
        return cuGraphExecMemsetNodeSetParams(hGraphExec, hNode, &m, p.memset.ctx);
    }
    case CU_GRAPH_NODE_TYPE_HOST: {
        CUDA_HOST_NODE_PARAMS h = {p.host.fn, p.host.userData};
        return cuGraphExecHostNodeSetParams(hGraphExec, hNode, &h);
    }
    case CU_GRAPH_NODE_TYPE_GRAPH:
        return cuGraphExecChildGraphNodeSetParams(hGraphExec, hNode, p.graph.graph);
    case CU_GRAPH_NODE_TYPE_EVENT_RECORD:
        return cuGraphExecEventRecordNodeSetEvent(hGraphExec, hNode, p.eventRecord.event);
    case CU_GRAPH_NODE_TYPE_WAIT_EVENT:
        return cuGraphExecEventWaitNodeSetEvent(hGraphExec, hNode, p.eventWait.event);
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
}

CUresult CUDAAPI cuGraphNodeSetEnabled(CUgraphExec hGraphExec, CUgraphNode hNode,
                                       unsigned int isEnabled)
{
    pthread_mutex_lock(&emu_graph_lock);
    emu_graph_exec *x;
    emu_graph_node *h, *n = NULL;
    CUresult r = exec_resolve(hGraphExec, &x);
    if (!r)
        r = node_resolve(hNode, &h);
    if (!r) {
        n = exec_find(x->g, h);
        if (!n || (n->type != CU_GRAPH_NODE_TYPE_KERNEL && n->type != CU_GRAPH_NODE_TYPE_MEMCPY &&
                   n->type != CU_GRAPH_NODE_TYPE_MEMSET))
            r = CUDA_ERROR_INVALID_VALUE;
        else
            n->enabled = isEnabled != 0;
    }
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

CUresult CUDAAPI cuGraphNodeGetEnabled(CUgraphExec hGraphExec, CUgraphNode hNode,
                                       unsigned int *isEnabled)
{
    if (!isEnabled)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&emu_graph_lock);
    emu_graph_exec *x;
    emu_graph_node *h, *n = NULL;
    CUresult r = exec_resolve(hGraphExec, &x);
    if (!r)
        r = node_resolve(hNode, &h);
    if (!r) {
        n = exec_find(x->g, h);
        if (!n)
            r = CUDA_ERROR_INVALID_VALUE;
        else
            *isEnabled = (unsigned)n->enabled;
    }
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

/* ---- stream capture ---- */

static struct emu_capture *capture_by_id(unsigned long long id)
{
    for (struct emu_capture *cp = captures; cp; cp = cp->next)
        if (cp->id == id)
            return cp;
    return NULL;
}

static int capture_add_member(struct emu_capture *cp, emu_stream *s)
{
    if (cp->nmembers == cp->memcap) {
        size_t ncap = cp->memcap ? cp->memcap * 2 : 4;
        emu_stream **n = realloc(cp->members, ncap * sizeof *n);
        if (!n)
            return -1;
        cp->members = n;
        cp->memcap = ncap;
    }
    cp->members[cp->nmembers++] = s;
    s->capture = cp;
    s->cap_ndeps = 0;
    atomic_fetch_add(&s->ctx->capturing, 1);
    return 0;
}

static void capture_detach(struct emu_capture *cp, emu_stream *s)
{
    for (size_t i = 0; i < cp->nmembers; i++) {
        if (cp->members[i] == s) {
            cp->members[i] = cp->members[--cp->nmembers];
            break;
        }
    }
    s->capture = NULL;
    s->cap_ndeps = 0;
    atomic_fetch_sub(&s->ctx->capturing, 1);
}

/* Ends a capture: every member stream leaves it; the capture is freed (its graph is not). */
static void capture_end(struct emu_capture *cp)
{
    while (cp->nmembers)
        capture_detach(cp, cp->members[cp->nmembers - 1]);
    for (struct emu_capture **pp = &captures; *pp; pp = &(*pp)->next) {
        if (*pp == cp) {
            *pp = cp->next;
            break;
        }
    }
    atomic_fetch_sub(&active_captures, 1);
    free(cp->members);
    free(cp->edges);
    free(cp);
}

/* Sets s's dependency set to {n}. */
static int set_deps_one(emu_stream *s, emu_graph_node *n)
{
    s->cap_ndeps = 0;
    return push_node(&s->cap_deps, &s->cap_ndeps, &s->cap_depcap, n);
}

static int add_deps(emu_stream *s, emu_graph_node *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!has_node(s->cap_deps, s->cap_ndeps, v[i]) &&
            push_node(&s->cap_deps, &s->cap_ndeps, &s->cap_depcap, v[i]) != 0)
            return -1;
    return 0;
}

CUresult CUDAAPI cuStreamBeginCaptureToGraph(CUstream hStream, CUgraph hGraph,
                                             const CUgraphNode *dependencies,
                                             const CUgraphEdgeData *dependencyData,
                                             size_t numDependencies, CUstreamCaptureMode mode);

static CUresult begin_capture(CUstream hStream, emu_graph *into, const CUgraphNode *deps,
                              size_t ndeps, CUstreamCaptureMode mode)
{
    emu_ctx *c;
    emu_stream *s;
    CUresult r = emu_stream_resolve(hStream, &c, &s);
    if (r)
        return r;
    if (mode != CU_STREAM_CAPTURE_MODE_GLOBAL && mode != CU_STREAM_CAPTURE_MODE_THREAD_LOCAL &&
        mode != CU_STREAM_CAPTURE_MODE_RELAXED)
        return CUDA_ERROR_INVALID_VALUE;
    if (!s)
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED; /* the default streams cannot be captured */
    pthread_mutex_lock(&emu_graph_lock);
    emu_graph_node **d = NULL;
    if (s->capture) {
        r = CUDA_ERROR_ILLEGAL_STATE;
        goto out;
    }
    if (into && (r = read_deps(into, deps, ndeps, &d)))
        goto out;
    struct emu_capture *cp = calloc(1, sizeof *cp);
    if (!cp) {
        r = CUDA_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    cp->graph = into ? into : graph_new(1);
    cp->owns_graph = into == NULL;
    if (!cp->graph) {
        free(cp);
        r = CUDA_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    cp->id = next_capture_id++;
    cp->ctx = c;
    cp->origin = s;
    cp->mode = mode;
    cp->thread = pthread_self();
    if (capture_add_member(cp, s) != 0 || (d && add_deps(s, d, ndeps) != 0)) {
        if (!into)
            graph_free(cp->graph);
        if (s->capture)
            capture_detach(cp, s);
        free(cp->members);
        free(cp);
        r = CUDA_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    cp->next = captures;
    captures = cp;
    atomic_fetch_add(&active_captures, 1);
out:
    free(d);
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

CUresult CUDAAPI cuStreamBeginCapture(CUstream hStream, CUstreamCaptureMode mode)
{
    return begin_capture(hStream, NULL, NULL, 0, mode);
}

CUresult CUDAAPI cuStreamBeginCaptureToGraph(CUstream hStream, CUgraph hGraph,
                                             const CUgraphNode *dependencies,
                                             const CUgraphEdgeData *dependencyData,
                                             size_t numDependencies, CUstreamCaptureMode mode)
{
    CUresult r = check_edges(dependencyData, numDependencies);
    if (r)
        return r;
    pthread_mutex_lock(&emu_graph_lock);
    emu_graph *g;
    r = graph_resolve(hGraph, &g);
    pthread_mutex_unlock(&emu_graph_lock);
    if (r)
        return r;
    return begin_capture(hStream, g, dependencies, numDependencies, mode);
}

/* Whether every other member stream of cp has joined back into the origin: each node a member
 * depends on must be an ancestor of (or one of) the origin's dependencies. */
static int all_joined(struct emu_capture *cp)
{
    emu_graph *g = cp->graph;
    emu_graph_node **stack = malloc((g->nnodes ? g->nnodes : 1) * sizeof *stack);
    if (!stack)
        return 1; /* cannot tell: accept */
    unsigned long long stamp = ++visit_stamp;
    size_t sp = 0;
    for (size_t i = 0; i < cp->origin->cap_ndeps; i++) {
        emu_graph_node *n = cp->origin->cap_deps[i];
        if (n->visit != stamp) {
            n->visit = stamp;
            stack[sp++] = n;
        }
    }
    while (sp) {
        emu_graph_node *n = stack[--sp];
        for (size_t k = 0; k < n->ndeps; k++) {
            if (n->deps[k]->visit != stamp) {
                n->deps[k]->visit = stamp;
                stack[sp++] = n->deps[k];
            }
        }
    }
    free(stack);
    for (size_t m = 0; m < cp->nmembers; m++) {
        emu_stream *s = cp->members[m];
        if (s == cp->origin)
            continue;
        for (size_t k = 0; k < s->cap_ndeps; k++)
            if (s->cap_deps[k]->visit != stamp)
                return 0;
    }
    return 1;
}

CUresult CUDAAPI cuStreamEndCapture(CUstream hStream, CUgraph *phGraph)
{
    emu_ctx *c;
    emu_stream *s;
    if (!phGraph)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = emu_stream_resolve(hStream, &c, &s);
    if (r)
        return r;
    pthread_mutex_lock(&emu_graph_lock);
    struct emu_capture *cp = s ? s->capture : NULL;
    if (!cp) {
        r = CUDA_ERROR_ILLEGAL_STATE;
    } else if (cp->origin != s) {
        r = CUDA_ERROR_STREAM_CAPTURE_UNMATCHED;
    } else if (cp->mode != CU_STREAM_CAPTURE_MODE_RELAXED &&
               !pthread_equal(cp->thread, pthread_self())) {
        r = CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD;
    } else {
        emu_graph *g = cp->graph;
        int owned = cp->owns_graph;
        if (cp->invalidated)
            r = CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
        else if (!all_joined(cp))
            r = CUDA_ERROR_STREAM_CAPTURE_UNJOINED;
        *phGraph = r ? NULL : (CUgraph)g;
        capture_end(cp);
        if (r && owned)
            graph_free(g); /* the capture's own graph is discarded on failure */
    }
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

CUresult CUDAAPI cuStreamIsCapturing(CUstream hStream, CUstreamCaptureStatus *captureStatus)
{
    emu_ctx *c;
    emu_stream *s;
    if (!captureStatus)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = emu_stream_resolve(hStream, &c, &s);
    if (r)
        return r;
    pthread_mutex_lock(&emu_graph_lock);
    struct emu_capture *cp = s ? s->capture : NULL;
    *captureStatus = !cp ? CU_STREAM_CAPTURE_STATUS_NONE
                     : cp->invalidated ? CU_STREAM_CAPTURE_STATUS_INVALIDATED
                                       : CU_STREAM_CAPTURE_STATUS_ACTIVE;
    pthread_mutex_unlock(&emu_graph_lock);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamGetCaptureInfo(CUstream hStream, CUstreamCaptureStatus *captureStatus_out,
                                        cuuint64_t *id_out, CUgraph *graph_out,
                                        const CUgraphNode **dependencies_out,
                                        const CUgraphEdgeData **edgeData_out,
                                        size_t *numDependencies_out)
{
    emu_ctx *c;
    emu_stream *s;
    if (!captureStatus_out)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = emu_stream_resolve(hStream, &c, &s);
    if (r)
        return r;
    pthread_mutex_lock(&emu_graph_lock);
    struct emu_capture *cp = s ? s->capture : NULL;
    *captureStatus_out = !cp ? CU_STREAM_CAPTURE_STATUS_NONE
                         : cp->invalidated ? CU_STREAM_CAPTURE_STATUS_INVALIDATED
                                           : CU_STREAM_CAPTURE_STATUS_ACTIVE;
    if (cp) {
        if (id_out)
            *id_out = cp->id;
        if (graph_out)
            *graph_out = (CUgraph)cp->graph;
        /* The arrays stay valid until the stream's next capture call, as CUDA documents. */
        if (dependencies_out)
            *dependencies_out = (const CUgraphNode *)s->cap_deps;
        if (edgeData_out) {
            if (cp->nedges < s->cap_ndeps) {
                CUgraphEdgeData *e = realloc(cp->edges, s->cap_ndeps * sizeof *e);
                if (e) {
                    cp->edges = e;
                    cp->nedges = s->cap_ndeps;
                }
            }
            if (cp->nedges >= s->cap_ndeps && cp->edges)
                memset(cp->edges, 0, s->cap_ndeps * sizeof *cp->edges);
            *edgeData_out = cp->nedges >= s->cap_ndeps ? cp->edges : NULL;
        }
        if (numDependencies_out)
            *numDependencies_out = s->cap_ndeps;
    }
    pthread_mutex_unlock(&emu_graph_lock);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamUpdateCaptureDependencies(CUstream hStream, CUgraphNode *dependencies,
                                                   const CUgraphEdgeData *dependencyData,
                                                   size_t numDependencies, unsigned int flags)
{
    emu_ctx *c;
    emu_stream *s;
    CUresult r = emu_stream_resolve(hStream, &c, &s);
    if (r)
        return r;
    if (flags != CU_STREAM_ADD_CAPTURE_DEPENDENCIES && flags != CU_STREAM_SET_CAPTURE_DEPENDENCIES)
        return CUDA_ERROR_INVALID_VALUE;
    if ((r = check_edges(dependencyData, numDependencies)))
        return r;
    pthread_mutex_lock(&emu_graph_lock);
    struct emu_capture *cp = s ? s->capture : NULL;
    emu_graph_node **d = NULL;
    if (!cp)
        r = CUDA_ERROR_ILLEGAL_STATE;
    else
        r = read_deps(cp->graph, dependencies, numDependencies, &d);
    if (!r) {
        if (flags == CU_STREAM_SET_CAPTURE_DEPENDENCIES)
            s->cap_ndeps = 0;
        if (add_deps(s, d, numDependencies) != 0)
            r = CUDA_ERROR_OUT_OF_MEMORY;
    }
    free(d);
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

CUresult CUDAAPI cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode *mode)
{
    CUstreamCaptureMode m;
    if (!mode || emu_host_read(&m, mode, sizeof m))
        return CUDA_ERROR_INVALID_VALUE;
    if (m != CU_STREAM_CAPTURE_MODE_GLOBAL && m != CU_STREAM_CAPTURE_MODE_THREAD_LOCAL &&
        m != CU_STREAM_CAPTURE_MODE_RELAXED)
        return CUDA_ERROR_INVALID_VALUE;
    CUstreamCaptureMode old = thread_mode;
    thread_mode = m;
    *mode = old;
    return CUDA_SUCCESS;
}

/* Adds a node made from op to s's capture. Caller holds the lock; op stays the caller's. */
static CUresult capture_node_from_op(struct emu_capture *cp, emu_stream *s, emu_op *op)
{
    CUgraphNodeType type;
    switch (op->kind) {
    case EMU_OP_LAUNCH: type = CU_GRAPH_NODE_TYPE_KERNEL; break;
    case EMU_OP_COPY:
    case EMU_OP_COPY3D: type = CU_GRAPH_NODE_TYPE_MEMCPY; break;
    case EMU_OP_MEMSET: type = CU_GRAPH_NODE_TYPE_MEMSET; break;
    case EMU_OP_HOSTFN:
        if (!op->u.hostfn.fn)
            return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED; /* stream callbacks cannot be captured */
        type = CU_GRAPH_NODE_TYPE_HOST;
        break;
    case EMU_OP_POOL_FREE: type = CU_GRAPH_NODE_TYPE_MEM_FREE; break;
    default: return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    }
    emu_graph_node *n = node_new(cp->graph, CU_GRAPH_NODE_TYPE_EMPTY, s->cap_deps, s->cap_ndeps);
    if (!n)
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult r = CUDA_SUCCESS;
    switch (op->kind) {
    case EMU_OP_LAUNCH: {
        const ptx_launch *l = &op->u.launch.launch;
        size_t nb = ptx_kernel_param_bytes(l->kernel), np = ptx_kernel_param_count(l->kernel);
        n->u.kernel.params = malloc(nb ? nb : 1);
        n->u.kernel.param_ptrs = malloc((np ? np : 1) * sizeof(void *));
        if (!n->u.kernel.params || !n->u.kernel.param_ptrs) {
            free(n->u.kernel.params);
            free(n->u.kernel.param_ptrs);
            r = CUDA_ERROR_OUT_OF_MEMORY;
            break;
        }
        memcpy(n->u.kernel.params, l->params, nb);
        for (size_t i = 0; i < np; i++) {
            size_t off, size;
            ptx_kernel_param(l->kernel, i, &off, &size);
            n->u.kernel.param_ptrs[i] = n->u.kernel.params + off;
        }
        n->u.kernel.handle = op->u.launch.handle;
        memcpy(n->u.kernel.grid, l->grid, sizeof l->grid);
        memcpy(n->u.kernel.block, l->block, sizeof l->block);
        n->u.kernel.shared = (unsigned)l->dynamic_shared;
        n->u.kernel.nbytes = nb;
        n->u.kernel.nparams = np;
        if (l->cooperative) {
            CUlaunchAttribute *a = kernel_attr(n, CU_LAUNCH_ATTRIBUTE_COOPERATIVE, 1);
            a->value.cooperative = 1;
        }
        break;
    }
    case EMU_OP_COPY: {
        emu_copy3d *c3 = &n->u.memcpy.copy;
        memset(c3, 0, sizeof *c3);
        c3->src.kind = op->u.copy.src_host ? EMU_SIDE_HOST : EMU_SIDE_DEVICE;
        c3->src.base = op->u.copy.src;
        c3->dst.kind = op->u.copy.dst_host ? EMU_SIDE_HOST : EMU_SIDE_DEVICE;
        c3->dst.base = op->u.copy.dst;
        c3->src.pitch = c3->dst.pitch = op->u.copy.size;
        c3->src.height = c3->dst.height = 1;
        c3->width = op->u.copy.size;
        c3->height = c3->depth = 1;
        break;
    }
    case EMU_OP_COPY3D:
        n->u.memcpy.copy = op->u.copy3d;
        emu_copy3d_retain(&n->u.memcpy.copy);
        break;
    case EMU_OP_MEMSET: {
        CUDA_MEMSET_NODE_PARAMS *p = &n->u.memset.p;
        p->dst = op->u.memset.dst;
        p->pitch = op->u.memset.pitch;
        p->value = op->u.memset.value;
        p->elementSize = (unsigned)op->u.memset.elem_size;
        p->width = op->u.memset.width;
        p->height = op->u.memset.height;
        break;
    }
    case EMU_OP_HOSTFN:
        n->u.host.fn = op->u.hostfn.fn;
        n->u.host.user = op->u.hostfn.user;
        break;
    case EMU_OP_POOL_FREE:
        n->u.free.dptr = op->u.pool_free.addr;
        break;
    }
    if (r) {
        for (size_t i = 0; i < n->ndeps; i++)
            drop_node(n->deps[i]->outs, &n->deps[i]->nouts, n);
        drop_node(cp->graph->nodes, &cp->graph->nnodes, n);
        node_free(n);
        return r;
    }
    n->type = type;
    if (set_deps_one(s, n) != 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    return CUDA_SUCCESS;
}

CUresult emu_capture_submit(emu_ctx *c, emu_stream *s, emu_op *op)
{
    (void)c;
    if (!s)
        return EMU_NOT_CAPTURED;
    pthread_mutex_lock(&emu_graph_lock);
    struct emu_capture *cp = s->capture;
    if (!cp) {
        pthread_mutex_unlock(&emu_graph_lock);
        return EMU_NOT_CAPTURED;
    }
    CUresult r = cp->invalidated ? CUDA_ERROR_STREAM_CAPTURE_INVALIDATED
                                 : capture_node_from_op(cp, s, op);
    if (r == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED)
        cp->invalidated = 1;
    pthread_mutex_unlock(&emu_graph_lock);
    emu_op_free(op);
    return r;
}

CUresult emu_capture_mem_alloc(emu_ctx *c, emu_stream *s, size_t size, void *pool, uint64_t *addr)
{
    (void)pool;
    if (!s)
        return EMU_NOT_CAPTURED;
    pthread_mutex_lock(&emu_graph_lock);
    struct emu_capture *cp = s->capture;
    if (!cp) {
        pthread_mutex_unlock(&emu_graph_lock);
        return EMU_NOT_CAPTURED;
    }
    CUresult r = CUDA_SUCCESS;
    if (cp->invalidated) {
        r = CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
        goto out;
    }
    emu_graph_node *n = node_new(cp->graph, CU_GRAPH_NODE_TYPE_EMPTY, s->cap_deps, s->cap_ndeps);
    if (!n) {
        r = CUDA_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    CUDA_MEM_ALLOC_NODE_PARAMS p;
    memset(&p, 0, sizeof p);
    p.poolProps.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    p.poolProps.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    p.poolProps.location.id = c->dev->ordinal;
    p.bytesize = size;
    r = alloc_node_make(n, &p, c);
    if (r) {
        for (size_t i = 0; i < n->ndeps; i++)
            drop_node(n->deps[i]->outs, &n->deps[i]->nouts, n);
        drop_node(cp->graph->nodes, &cp->graph->nnodes, n);
        node_free(n);
        goto out;
    }
    n->type = CU_GRAPH_NODE_TYPE_MEM_ALLOC;
    *addr = p.dptr;
    if (set_deps_one(s, n) != 0)
        r = CUDA_ERROR_OUT_OF_MEMORY;
out:
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

CUresult emu_capture_event_record(emu_event *e, emu_ctx *c, emu_stream *s, int external)
{
    (void)c;
    if (!s)
        return EMU_NOT_CAPTURED;
    pthread_mutex_lock(&emu_graph_lock);
    struct emu_capture *cp = s->capture;
    CUresult r = CUDA_SUCCESS;
    if (!cp) {
        r = EMU_NOT_CAPTURED;
    } else if (cp->invalidated) {
        r = CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    } else if (external) {
        emu_graph_node *n = node_new(cp->graph, CU_GRAPH_NODE_TYPE_EVENT_RECORD, s->cap_deps,
                                     s->cap_ndeps);
        if (!n || set_deps_one(s, n) != 0)
            r = CUDA_ERROR_OUT_OF_MEMORY;
        else
            n->u.event.event = (CUevent)e;
    } else {
        /* Not a node: the event carries the stream's dependencies to whoever waits on it. */
        emu_graph_node **d = malloc((s->cap_ndeps ? s->cap_ndeps : 1) * sizeof *d);
        if (!d) {
            r = CUDA_ERROR_OUT_OF_MEMORY;
        } else {
            memcpy(d, s->cap_deps, s->cap_ndeps * sizeof *d);
            free(e->cap_deps);
            e->cap_deps = d;
            e->cap_ndeps = s->cap_ndeps;
            e->cap_id = cp->id;
        }
    }
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

CUresult emu_capture_event_wait(emu_event *e, emu_ctx *c, emu_stream *s, int external)
{
    (void)c;
    pthread_mutex_lock(&emu_graph_lock);
    struct emu_capture *ecp = e->cap_id ? capture_by_id(e->cap_id) : NULL;
    struct emu_capture *scp = s ? s->capture : NULL;
    CUresult r = CUDA_SUCCESS;
    if (!scp && !ecp) {
        r = EMU_NOT_CAPTURED;
    } else if (scp && scp->invalidated) {
        r = CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    } else if (!ecp) {
        /* A capturing stream waits on an event recorded outside the capture. */
        if (!external) {
            scp->invalidated = 1;
            r = CUDA_ERROR_STREAM_CAPTURE_ISOLATION;
        } else {
            emu_graph_node *n = node_new(scp->graph, CU_GRAPH_NODE_TYPE_WAIT_EVENT, s->cap_deps,
                                         s->cap_ndeps);
            if (!n || set_deps_one(s, n) != 0)
                r = CUDA_ERROR_OUT_OF_MEMORY;
            else
                n->u.event.event = (CUevent)e;
        }
    } else if (!s) {
        r = CUDA_ERROR_STREAM_CAPTURE_IMPLICIT; /* a default stream cannot join a capture */
        ecp->invalidated = 1;
    } else if (scp && scp != ecp) {
        r = CUDA_ERROR_STREAM_CAPTURE_ISOLATION; /* two captures cannot be merged */
        scp->invalidated = ecp->invalidated = 1;
    } else {
        /* Fork: s joins the capture; or join: s now also depends on the event's nodes. */
        if (!scp && capture_add_member(ecp, s) != 0)
            r = CUDA_ERROR_OUT_OF_MEMORY;
        else if (add_deps(s, e->cap_deps, e->cap_ndeps) != 0)
            r = CUDA_ERROR_OUT_OF_MEMORY;
    }
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

/* Whether the calling thread may make a call that could synchronize, given the captures under
 * way (CUDA's rules for cuThreadExchangeStreamCaptureMode); invalidates what forbids it. */
CUresult emu_capture_unsafe_call(void)
{
    if (atomic_load_explicit(&active_captures, memory_order_acquire) == 0 ||
        thread_mode == CU_STREAM_CAPTURE_MODE_RELAXED)
        return CUDA_SUCCESS;
    pthread_mutex_lock(&emu_graph_lock);
    CUresult r = CUDA_SUCCESS;
    for (struct emu_capture *cp = captures; cp; cp = cp->next) {
        int mine = pthread_equal(cp->thread, pthread_self()) &&
                   cp->mode != CU_STREAM_CAPTURE_MODE_RELAXED;
        int global = cp->mode == CU_STREAM_CAPTURE_MODE_GLOBAL &&
                     thread_mode == CU_STREAM_CAPTURE_MODE_GLOBAL;
        if (mine || global) {
            cp->invalidated = 1;
            r = CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
        }
    }
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

CUresult emu_capture_sync_check(emu_ctx *c, emu_stream *s)
{
    if (atomic_load_explicit(&c->capturing, memory_order_acquire) == 0)
        return CUDA_SUCCESS;
    if (!s)
        return emu_capture_unsafe_call();
    pthread_mutex_lock(&emu_graph_lock);
    CUresult r = CUDA_SUCCESS;
    if (s->capture) {
        s->capture->invalidated = 1;
        r = CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    }
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

CUresult emu_capture_event_check(emu_event *e)
{
    if (atomic_load_explicit(&active_captures, memory_order_acquire) == 0)
        return CUDA_SUCCESS;
    pthread_mutex_lock(&emu_graph_lock);
    CUresult r = CUDA_SUCCESS;
    struct emu_capture *cp = e->cap_id ? capture_by_id(e->cap_id) : NULL;
    if (cp) {
        cp->invalidated = 1;
        r = CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    }
    pthread_mutex_unlock(&emu_graph_lock);
    return r;
}

void emu_capture_stream_gone(emu_stream *s)
{
    pthread_mutex_lock(&emu_graph_lock);
    struct emu_capture *cp = s->capture;
    if (cp) {
        if (cp->origin == s) {
            /* The capture cannot be ended any more: it is discarded with its graph. */
            emu_graph *g = cp->graph;
            int owned = cp->owns_graph;
            capture_end(cp);
            if (owned)
                graph_free(g);
        } else {
            capture_detach(cp, s);
            cp->invalidated = 1;
        }
    }
    free(s->cap_deps);
    s->cap_deps = NULL;
    s->cap_ndeps = s->cap_depcap = 0;
    pthread_mutex_unlock(&emu_graph_lock);
}

void emu_capture_ctx_gone(emu_ctx *c)
{
    pthread_mutex_lock(&emu_graph_lock);
    for (struct emu_capture *cp = captures, *next; cp; cp = next) {
        next = cp->next;
        if (cp->ctx != c)
            continue;
        emu_graph *g = cp->graph;
        int owned = cp->owns_graph;
        capture_end(cp);
        if (owned)
            graph_free(g);
    }
    pthread_mutex_unlock(&emu_graph_lock);
}

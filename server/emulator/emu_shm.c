/* emu_shm: one emulated device per host. Every process that loads the emulated driver with the
 * same configuration (device count and memory per device) charges its device memory to one small
 * shared segment, so cuMemGetInfo in one process sees what the others use and cuMemAlloc fails
 * with CUDA_ERROR_OUT_OF_MEMORY when the device is full across processes, as on a GPU.
 *
 * The segment (POSIX shared memory, /dev/shm/vgpu-emu-UID-NxBYTES by default; VGPU_EMU_SHM names
 * another, or "none" for process-local accounting) holds a header (magic, version, sizes, the
 * configuration) and a fixed table of per-process slots: the owner's pid and process start time
 * (which together name a process even after its pid is reused) and its bytes in use per device.
 *
 * Who writes what: a process writes only its own slot, under the segment lock; it reclaims
 * (zeroes) the slot of a process that is dead. Death is decided by the kernel, not by pid
 * guessing: each live owner holds a POSIX record lock on its slot's byte of the segment file, which
 * the kernel drops when the process ends in any way (SIGKILL in the middle of an allocation
 * included), so F_GETLK on a slot's byte tells whether its owner lives, whatever the pid
 * namespace. The segment lock is flock() on the segment (released on death, too), taken after a
 * process-local mutex (flock does not exclude the threads of one process).
 *
 * Nothing read from the segment is trusted: another process may have scribbled on it. A header
 * that does not match is refused (process-local accounting and a warning); a usage value above
 * the device's size counts as the device's size; sums saturate. A scribbled segment can make the
 * device look full or empty, never crash the driver or corrupt its own bookkeeping (a process
 * keeps its own usage locally and rewrites its slot from that). */
#include "emu.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define SHM_MAGIC "VGPUEMU\0"
#define SHM_VERSION 1u
#define SHM_SLOTS 256u
/* Each slot's liveness lock is one byte at this offset plus the slot index: past the end of the
 * segment, where record locks are allowed and nothing is mapped. */
#define SHM_LOCK_BASE ((off_t)1 << 20)

struct shm_header {
    char magic[8];
    uint32_t version;
    uint32_t header_size;
    uint64_t total_size;
    uint32_t ndevices;
    uint32_t nslots;
    uint64_t mem_per_device;
    uint64_t reserved[3];
};

struct shm_owner {
    uint64_t pid;         /* 0: free */
    uint64_t start_time;  /* field 22 of /proc/PID/stat, clock ticks after boot */
};

struct shm_segment {
    struct shm_header h;
    struct shm_owner owner[SHM_SLOTS];
    uint64_t used[EMU_MAX_DEVICES][SHM_SLOTS]; /* by device, so that a device's sum is one scan */
};

/* Process-local state, guarded by shm_lock. */
static pthread_mutex_t shm_lock = PTHREAD_MUTEX_INITIALIZER;
static char shm_name[256];          /* "" when accounting is process-local */
static int shm_fd = -1;
static struct shm_segment *seg;     /* NULL when process-local */
static long my_slot = -1;
static int reopen_after_fork;
static int ndev;
static size_t dev_total;
static uint64_t local_used[EMU_MAX_DEVICES]; /* this process's usage: the truth for its slot */
static int warned_corrupt;

static uint64_t self_start_time(void)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: fields count from the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    unsigned long long v = 0;
    /* After ")": state(3) ppid ... starttime is field 22, i.e. the 20th after the state. */
    int field = 2;
    for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " ")) {
        field++;
        if (field == 22) {
            v = strtoull(tok, NULL, 10);
            break;
        }
    }
    return v;
}

static int slot_lock_op(long slot, int cmd, short type, struct flock *out)
{
    struct flock fl = {0};
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = SHM_LOCK_BASE + slot;
    fl.l_len = 1;
    int rc = fcntl(shm_fd, cmd, &fl);
    if (out)
        *out = fl;
    return rc;
}

/* 1 when the owner of slot i is alive (holds the slot's lock), 0 when it is gone. */
static int slot_owner_alive(long i)
{
    if (i == my_slot)
        return 1;
    struct flock fl;
    if (slot_lock_op(i, F_GETLK, F_WRLCK, &fl) != 0)
        return 1; /* cannot tell: never reclaim on doubt */
    return fl.l_type != F_UNLCK;
}

static void slot_clear(long i)
{
    seg->owner[i].pid = 0;
    seg->owner[i].start_time = 0;
    for (int d = 0; d < EMU_MAX_DEVICES; d++)
        seg->used[d][i] = 0;
}

/* Zeroes the slots of dead owners and slots that claim usage without an owner. Caller holds the
 * segment lock. */
static void reclaim_dead(void)
{
    for (long i = 0; i < (long)SHM_SLOTS; i++) {
        if (i == my_slot)
            continue;
        if (seg->owner[i].pid != 0) {
            if (!slot_owner_alive(i))
                slot_clear(i);
            continue;
        }
        for (int d = 0; d < ndev; d++)
            if (seg->used[d][i]) {
                slot_clear(i);
                break;
            }
    }
}

/* Takes a slot for this process (caller holds the segment lock); my_slot stays -1 when none is
 * free, in which case this process's usage is not published (it still sees the others'). */
static void claim_slot(void)
{
    for (long pass = 0; pass < 2 && my_slot < 0; pass++) {
        if (pass == 1)
            reclaim_dead();
        for (long i = 0; i < (long)SHM_SLOTS; i++) {
            if (seg->owner[i].pid != 0)
                continue;
            if (slot_lock_op(i, F_SETLK, F_WRLCK, NULL) != 0)
                continue; /* held by a live process whose entry was scribbled away */
            slot_clear(i);
            seg->owner[i].pid = (uint64_t)getpid();
            seg->owner[i].start_time = self_start_time();
            my_slot = i;
            break;
        }
    }
    if (my_slot < 0)
        vg_warn("emulated GPU: shared segment %s has no free slot; this process's memory use is "
                "not visible to others", shm_name);
}

static int header_ok(const struct shm_header *h)
{
    return memcmp(h->magic, SHM_MAGIC, sizeof h->magic) == 0 && h->version == SHM_VERSION &&
           h->header_size == sizeof(struct shm_header) &&
           h->total_size == sizeof(struct shm_segment) && h->ndevices == (uint32_t)ndev &&
           h->nslots == SHM_SLOTS && h->mem_per_device == (uint64_t)dev_total;
}

/* Opens (creating and initialising when new) and maps the segment. Caller holds shm_lock. */
static int segment_open(void)
{
    int fd = shm_open(shm_name, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        vg_warn("emulated GPU: cannot open shared segment %s (%s); memory use is per process",
                shm_name, strerror(errno));
        return -1;
    }
    while (flock(fd, LOCK_EX) != 0 && errno == EINTR)
        ;
    struct stat st;
    int rc = -1;
    if (fstat(fd, &st) != 0)
        goto out;
    if (st.st_uid != geteuid()) {
        vg_warn("emulated GPU: shared segment %s belongs to another user; memory use is per process",
                shm_name);
        goto out;
    }
    if (st.st_size == 0 && ftruncate(fd, (off_t)sizeof(struct shm_segment)) != 0)
        goto out;
    if (st.st_size != 0 && st.st_size != (off_t)sizeof(struct shm_segment)) {
        vg_warn("emulated GPU: shared segment %s has an unexpected size (%lld bytes); memory use "
                "is per process", shm_name, (long long)st.st_size);
        goto out;
    }
    void *p = mmap(NULL, sizeof(struct shm_segment), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        goto out;
    struct shm_segment *s = p;
    static const char zero_magic[8];
    if (st.st_size == 0 || memcmp(s->h.magic, zero_magic, sizeof zero_magic) == 0) {
        /* New (zero-filled by ftruncate), or its creator died before writing the header: write
         * the header, magic last, under the lock. */
        s->h.version = SHM_VERSION;
        s->h.header_size = sizeof(struct shm_header);
        s->h.total_size = sizeof(struct shm_segment);
        s->h.ndevices = (uint32_t)ndev;
        s->h.nslots = SHM_SLOTS;
        s->h.mem_per_device = (uint64_t)dev_total;
        memcpy(s->h.magic, SHM_MAGIC, sizeof s->h.magic);
    }
    if (!header_ok(&s->h)) {
        vg_warn("emulated GPU: shared segment %s has a foreign or damaged header; memory use is "
                "per process", shm_name);
        munmap(p, sizeof(struct shm_segment));
        goto out;
    }
    shm_fd = fd;
    seg = s;
    my_slot = -1;
    claim_slot();
    rc = 0;
out:
    flock(fd, LOCK_UN);
    if (rc != 0)
        close(fd);
    return rc;
}

/* A forked child shares the parent's mapping and open file description but not its record locks:
 * it must not write the parent's slot, and it needs its own description for flock to exclude the
 * parent. It reopens the segment on first use. */
static void atfork_prepare(void)
{
    pthread_mutex_lock(&shm_lock);
}

static void atfork_parent(void)
{
    pthread_mutex_unlock(&shm_lock);
}

static void atfork_child(void)
{
    if (seg) {
        reopen_after_fork = 1;
        my_slot = -1;
    }
    memset(local_used, 0, sizeof local_used);
    pthread_mutex_unlock(&shm_lock);
}

/* Caller holds shm_lock. Returns 1 with the segment lock held, 0 for process-local accounting. */
static int segment_enter(void)
{
    if (reopen_after_fork) {
        reopen_after_fork = 0;
        if (seg)
            munmap(seg, sizeof(struct shm_segment));
        if (shm_fd >= 0)
            close(shm_fd);
        seg = NULL;
        shm_fd = -1;
        segment_open();
    }
    if (!seg)
        return 0;
    while (flock(shm_fd, LOCK_EX) != 0 && errno == EINTR)
        ;
    if (!header_ok(&seg->h)) {
        /* Scribbled after we opened it: stop sharing rather than trust it. */
        if (!warned_corrupt++)
            vg_warn("emulated GPU: shared segment %s was damaged; memory use is now per process",
                    shm_name);
        flock(shm_fd, LOCK_UN);
        munmap(seg, sizeof(struct shm_segment));
        close(shm_fd);
        seg = NULL;
        shm_fd = -1;
        my_slot = -1;
        return 0;
    }
    if (my_slot < 0)
        claim_slot();
    return 1;
}

static void segment_leave(void)
{
    flock(shm_fd, LOCK_UN);
}

/* Bytes in use on device d by every process (this one's from local_used). Caller holds the
 * segment lock when sharing. */
static uint64_t sum_used(int d)
{
    uint64_t sum = local_used[d];
    if (!seg)
        return sum;
    for (long i = 0; i < (long)SHM_SLOTS; i++) {
        if (i == my_slot)
            continue;
        uint64_t v = seg->used[d][i];
        if (v > dev_total) {
            if (!warned_corrupt++)
                vg_warn("emulated GPU: shared segment %s holds an impossible value", shm_name);
            v = dev_total;
        }
        sum = sum + v < sum ? UINT64_MAX : sum + v;
    }
    return sum;
}

static void publish(int d)
{
    if (seg && my_slot >= 0) {
        seg->used[d][my_slot] = local_used[d];
        seg->owner[my_slot].pid = (uint64_t)getpid(); /* rewritten in case it was scribbled */
    }
}

void emu_capacity_init(int ndevices, size_t mem_per_device)
{
    pthread_mutex_lock(&shm_lock);
    ndev = ndevices;
    dev_total = mem_per_device;
    const char *env = getenv("VGPU_EMU_SHM");
    if (env && (!strcmp(env, "none") || !strcmp(env, "off") || !strcmp(env, "0"))) {
        shm_name[0] = '\0';
    } else if (env && *env) {
        int ok = strlen(env) < 200;
        for (const char *p = env; *p && ok; p++)
            ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                 *p == '-' || *p == '_' || *p == '.';
        if (ok) {
            snprintf(shm_name, sizeof shm_name, "/%s", env);
        } else {
            vg_warn("VGPU_EMU_SHM=%s is not a plain name ([A-Za-z0-9._-], under 200 characters); "
                    "using the default segment", env);
            env = NULL;
        }
    }
    if (!env || !*env)
        snprintf(shm_name, sizeof shm_name, "/vgpu-emu-%u-%dx%zu", (unsigned)geteuid(), ndevices,
                 mem_per_device);
    if (shm_name[0] && segment_open() == 0) {
        static int registered;
        if (!registered++)
            pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
        vg_info("emulated GPU: device memory shared with other processes through %s", shm_name);
    }
    pthread_mutex_unlock(&shm_lock);
}

CUresult emu_capacity_reserve(int device, size_t bytes)
{
    if (device < 0 || device >= ndev)
        return CUDA_ERROR_INVALID_VALUE;
    if (bytes > dev_total)
        return CUDA_ERROR_OUT_OF_MEMORY;
    pthread_mutex_lock(&shm_lock);
    int shared = segment_enter();
    uint64_t used = sum_used(device);
    if (used > dev_total || bytes > dev_total - used) {
        if (shared) {
            reclaim_dead(); /* the device looks full: some of it may belong to the dead */
            used = sum_used(device);
        }
    }
    CUresult r = CUDA_ERROR_OUT_OF_MEMORY;
    if (used <= dev_total && bytes <= dev_total - used) {
        local_used[device] += bytes;
        publish(device);
        r = CUDA_SUCCESS;
    }
    if (shared)
        segment_leave();
    pthread_mutex_unlock(&shm_lock);
    return r;
}

void emu_capacity_release(int device, size_t bytes)
{
    if (device < 0 || device >= ndev)
        return;
    pthread_mutex_lock(&shm_lock);
    int shared = segment_enter();
    local_used[device] -= bytes < local_used[device] ? bytes : local_used[device];
    publish(device);
    if (shared)
        segment_leave();
    pthread_mutex_unlock(&shm_lock);
}

size_t emu_capacity_used(int device)
{
    if (device < 0 || device >= ndev)
        return 0;
    pthread_mutex_lock(&shm_lock);
    int shared = segment_enter();
    if (shared)
        reclaim_dead();
    uint64_t used = sum_used(device);
    if (shared)
        segment_leave();
    pthread_mutex_unlock(&shm_lock);
    return used > dev_total ? dev_total : (size_t)used;
}

const char *emu_capacity_segment(void)
{
    return seg ? shm_name : NULL;
}

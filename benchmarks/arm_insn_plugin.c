/*
 * A QEMU TCG plugin that counts executed guest instructions, for
 * benchmarks/arm_instruction_counts.py (built by benchmarks/arm_setup.sh).
 *
 * Every translation block (TB) gets a record {start address, instruction count,
 * executions}; an execution callback adds one to the record's executions (atomically,
 * so that guest threads running at once are all counted). Executed instructions =
 * sum over records of instructions * executions (a TB left early by a fault counts in
 * full, as in QEMU's own counting plugins).
 *
 * Markers: the guest calls lseek(-1, MAGIC + label, SEEK_SET) (it fails with EBADF and
 * has no other effect; aarch64 and x86_64 guests); the syscall callback then writes
 *     marker <label> <instructions executed so far>
 * and, with regions=on, one line per TB start address executed since the previous
 * marker:
 *     tb <label> <start address, hex> <instructions executed since the previous marker>
 * At exit it writes "total <instructions>". Lines go to out=<file> (appended) or, without
 * it, to QEMU's log (stderr).
 *
 * Arguments: out=<path>, regions=on|off (default off).
 *
 * The few declarations below are those of QEMU's plugin API version 1 (QEMU 4.2 to 8.x,
 * e.g. Debian bookworm's 7.2); this file declares them itself so that it builds without
 * QEMU's headers. Build:
 *     gcc -O2 -shared -fPIC -o arm_insn_plugin.so arm_insn_plugin.c
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- QEMU plugin API (version 1) ------------------------------------------------- */
typedef uint64_t qemu_plugin_id_t;
typedef struct {
    const char *target_name;
    struct {
        int min;
        int cur;
    } version;
    bool system_emulation;
    union {
        struct {
            int smp_vcpus;
            int max_vcpus;
        } system;
    };
} qemu_info_t;
struct qemu_plugin_tb;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_syscall_cb_t)(qemu_plugin_id_t id, unsigned int vcpu_index,
                                              int64_t num, uint64_t a1, uint64_t a2,
                                              uint64_t a3, uint64_t a4, uint64_t a5,
                                              uint64_t a6, uint64_t a7, uint64_t a8);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_syscall_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_syscall_cb_t cb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
void qemu_plugin_outs(const char *string);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;
/* ----------------------------------------------------------------------------------- */

#define AARCH64_SYS_LSEEK 62
#define X86_64_SYS_LSEEK 8
#define MARKER_MAGIC 0x4b4d4e000000ULL /* "KMN" << 24; the label is added to it */
#define MARKER_LABELS 0x1000000ULL

typedef struct {
    uint64_t vaddr;
    uint64_t insns;
    uint64_t execs;      /* updated atomically by the execution callback */
    uint64_t execs_seen; /* executions at the previous marker */
} tb_record;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static tb_record **records;
static size_t n_records, capacity;
static FILE *out;
static bool regions;
static int64_t lseek_number = AARCH64_SYS_LSEEK;

static void emit(const char *line)
{
    if (out) {
        fputs(line, out);
        fflush(out);
    } else {
        qemu_plugin_outs(line);
    }
}

static void on_exec(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    __atomic_fetch_add(&((tb_record *)userdata)->execs, 1, __ATOMIC_RELAXED);
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    tb_record *record = calloc(1, sizeof(*record));
    if (!record) {
        abort();
    }
    record->vaddr = qemu_plugin_tb_vaddr(tb);
    record->insns = qemu_plugin_tb_n_insns(tb);
    pthread_mutex_lock(&lock);
    if (n_records == capacity) {
        capacity = capacity ? 2 * capacity : 65536;
        records = realloc(records, capacity * sizeof(*records));
        if (!records) {
            abort();
        }
    }
    records[n_records++] = record;
    pthread_mutex_unlock(&lock);
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_exec, QEMU_PLUGIN_CB_NO_REGS, record);
}

static int by_vaddr(const void *a, const void *b)
{
    uint64_t x = (*(tb_record *const *)a)->vaddr, y = (*(tb_record *const *)b)->vaddr;
    return (x > y) - (x < y);
}

/* Total executed instructions; with `label` >= 0 and regions on, also the per-TB lines
 * since the previous marker (the caller holds the lock). */
static uint64_t count(int64_t label)
{
    uint64_t total = 0;
    char line[96];
    if (label >= 0 && regions) {
        qsort(records, n_records, sizeof(*records), by_vaddr);
    }
    for (size_t i = 0; i < n_records; i++) {
        tb_record *r = records[i];
        uint64_t execs = __atomic_load_n(&r->execs, __ATOMIC_RELAXED);
        total += r->insns * execs;
        if (label < 0) {
            continue;
        }
        if (regions) {
            /* Records of one start address (retranslations) are adjacent: one line. */
            uint64_t since = r->insns * (execs - r->execs_seen);
            r->execs_seen = execs;
            while (i + 1 < n_records && records[i + 1]->vaddr == r->vaddr) {
                tb_record *next = records[++i];
                uint64_t e = __atomic_load_n(&next->execs, __ATOMIC_RELAXED);
                total += next->insns * e;
                since += next->insns * (e - next->execs_seen);
                next->execs_seen = e;
            }
            if (since) {
                snprintf(line, sizeof(line), "tb %" PRId64 " %" PRIx64 " %" PRIu64 "\n", label,
                         r->vaddr, since);
                emit(line);
            }
        }
    }
    return total;
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num, uint64_t a1,
                       uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6,
                       uint64_t a7, uint64_t a8)
{
    (void)id; (void)vcpu_index; (void)a3; (void)a4; (void)a5; (void)a6; (void)a7; (void)a8;
    if (num != lseek_number || (uint32_t)a1 != 0xffffffffu || a2 < MARKER_MAGIC ||
        a2 >= MARKER_MAGIC + MARKER_LABELS) {
        return;
    }
    int64_t label = (int64_t)(a2 - MARKER_MAGIC);
    char line[96];
    pthread_mutex_lock(&lock);
    uint64_t total = count(label);
    snprintf(line, sizeof(line), "marker %" PRId64 " %" PRIu64 "\n", label, total);
    emit(line);
    pthread_mutex_unlock(&lock);
}

static void at_exit(qemu_plugin_id_t id, void *userdata)
{
    (void)id; (void)userdata;
    char line[64];
    pthread_mutex_lock(&lock);
    snprintf(line, sizeof(line), "total %" PRIu64 "\n", count(-1));
    emit(line);
    pthread_mutex_unlock(&lock);
    if (out) {
        fclose(out);
        out = NULL;
    }
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id,
                                                               const qemu_info_t *info,
                                                               int argc, char **argv)
{
    if (info->version.cur < 1 || info->version.min > 1) {
        fprintf(stderr, "arm_insn_plugin: QEMU's plugin API is version %d (min %d); "
                        "this plugin is written for version 1\n",
                info->version.cur, info->version.min);
        return -1;
    }
    /* The markers' syscall number is the guest's (an x86_64 guest serves to compare counts
     * with times measured on the x86 host). */
    if (strcmp(info->target_name, "x86_64") == 0) {
        lseek_number = X86_64_SYS_LSEEK;
    } else if (strcmp(info->target_name, "aarch64") != 0) {
        fprintf(stderr, "arm_insn_plugin: guest %s: markers are only read on aarch64 and "
                        "x86_64 guests\n", info->target_name);
        lseek_number = -1;
    }
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4) == 0) {
            out = fopen(argv[i] + 4, "a");
            if (!out) {
                perror(argv[i] + 4);
                return -1;
            }
        } else if (strcmp(argv[i], "regions=on") == 0) {
            regions = true;
        } else if (strcmp(argv[i], "regions=off") == 0) {
            regions = false;
        } else {
            fprintf(stderr, "arm_insn_plugin: unknown argument %s\n", argv[i]);
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}

/* Maps and helpers shared by every Runward program: the watched-cgroup verdict, the
 * per-cgroup state (syscall bitmap, capabilities seen, pending losses) and emission. */
#ifndef RUNWARD_COMMON_BPF_H
#define RUNWARD_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "runward.h"

#if !defined(__TARGET_ARCH_x86)
#error "syscall numbers and pt_regs access are only wired for x86_64"
#endif

/* x86_64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl). */
#define RW_NR_read 0
#define RW_NR_write 1
#define RW_NR_open 2
#define RW_NR_sendto 44
#define RW_NR_recvfrom 45
#define RW_NR_sendmsg 46
#define RW_NR_recvmsg 47
#define RW_NR_creat 85
#define RW_NR_openat 257
#define RW_NR_sendmmsg 307
#define RW_NR_openat2 437

#define RW_MSG_PEEK 2

#define RW_AF_INET 2
#define RW_AF_INET6 10
#define RW_IPPROTO_TCP 6
#define RW_IPPROTO_UDP 17
#define RW_SOCK_STREAM 1
#define RW_SOCK_DGRAM 2
#define RW_S_IFMT 0170000
#define RW_S_IFSOCK 0140000
#define RW_O_WRONLY 01
#define RW_O_CREAT 0100
#define RW_O_TRUNC 01000

struct event_header {
	u32 type;
	u32 pid; /* thread group id, what user space calls a pid */
	u32 tid;
	u32 losses; /* events of this cgroup the kernel failed to emit before this one */
	u64 cgroup_id;
	u64 ts_ns; /* CLOCK_MONOTONIC */
	char comm[RW_COMM_LEN];
};

struct cg_state {
	u64 syscalls[RW_SYSCALL_WORDS];
	u64 caps_seen;
	u64 losses;
};

struct verdict {
	u32 gen;
	u32 watched;
};

struct config {
	u32 gen; /* bumped by user space whenever `watched` changes: cached verdicts go stale */
	u32 sock_rw; /* also inspect read()/write() on UDP sockets for DNS (resolvers such as Go's) */
	u64 dedup_window_ns; /* 0 disables the in-kernel dedup */
	u32 self_tgid; /* the sensor itself: never observed, even inside a watched subtree */
	u32 _pad;
};

/* Identity of a repeatable event, for the in-kernel dedup window. */
struct dedup_key {
	u64 cgroup_id;
	u64 a;
	u64 b;
	u32 kind;
	u32 extra;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, RW_RINGBUF_BYTES);
} events SEC(".maps");

/* cgroup id -> RW_WATCH (observe its subtree) or RW_EXCLUDE; filled by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u64);
	__type(value, u8);
} watched SEC(".maps");

/* Per-cgroup answer to "is an ancestor watched?", so the ancestry walk runs once per
 * cgroup rather than once per syscall of every process on the node. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u64);
	__type(value, struct verdict);
} verdicts SEC(".maps");

/* The last verdicts each CPU computed, direct-mapped by the low bits of the cgroup id
 * (RW_SLOTS per CPU): a busy task asks again and again for the same cgroup, and a slot
 * answers without a hash lookup, even when a few cgroups' tasks take turns on the CPU. A
 * slot also remembers what its cgroup's state already holds, so that the common case of a
 * syscall costs no map update and a repeated open no dedup-map lookup. */
struct verdict_slot {
	u64 cgroup_id;
	u32 gen; /* 0 while being written: the reader then falls back to the map */
	u32 watched;
	u64 known[RW_SYSCALL_WORDS]; /* syscall bits already set in the cgroup's state */
	u64 caps_known; /* capabilities already reported for the cgroup */
	/* the last open this CPU sent or folded for the cgroup, and when it was last sent */
	u64 open_dentry;
	u64 open_ino;
	u64 open_flags;
	u64 open_sent_ns;
	/* jiffies when a clock read last found that open's window open for RW_FOLD_MARGIN_NS
	 * more (0: none): until the tick moves, a repeat folds without reading the clock */
	u64 open_fold_tick;
};

#define RW_SLOTS 16

/* A repeated open folds without a clock read only while the window has this much left at
 * the last read (50 ms: several ticks at any CONFIG_HZ, so a stale jiffies cannot stretch
 * the window). */
#define RW_FOLD_MARGIN_NS 50000000ULL

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RW_SLOTS);
	__type(key, u32);
	__type(value, struct verdict_slot);
} last_verdict SEC(".maps");

/* State of watched cgroups only; user space reads the syscall bitmaps and deletes the
 * entries of cgroups that are gone. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, u64);
	__type(value, struct cg_state);
} cgstate SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct config);
} rw_config SEC(".maps");

/* UDP destination ports treated as DNS (53 unless the loader says otherwise). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, u16);
	__type(value, u8);
} dns_ports SEC(".maps");

/* When each repeatable event was last sent. The same fold the sensor does in user space,
 * done before the perf output: a tight open() loop then costs a map lookup per call
 * instead of a sample, a wake-up and a Python decode. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct dedup_key);
	__type(value, u64);
} recent SEC(".maps");

/* Plain array with atomic adds: pylibbpf reads it without per-CPU value handling. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RW_STAT_COUNT);
	__type(key, u32);
	__type(value, u64);
} stats SEC(".maps");

static __always_inline void stat_add(u32 idx, u64 n)
{
	u64 *v = bpf_map_lookup_elem(&stats, &idx);
	if (v)
		__sync_fetch_and_add(v, n);
}

/* The current task's cgroup v2 id, as bpf_get_current_cgroup_id() gives it, read with direct
 * loads through the task's BTF pointers instead of a helper call (measured here: 62 ns per
 * run of a sys_enter program against 80 ns with the helper, 53 ns for an empty one, with
 * bpf_stats on). Every program asks it first, most of them on every syscall of the node. */
static __always_inline u64 current_cgroup_id(void)
{
	struct task_struct *task = bpf_get_current_task_btf();
	return task->cgroups->dfl_cgrp->kn->id;
}

static __always_inline struct config *get_config(void)
{
	u32 zero = 0;
	return bpf_map_lookup_elem(&rw_config, &zero);
}

static __always_inline bool compute_verdict(u64 cg, u32 gen)
{
	struct verdict *v = bpf_map_lookup_elem(&verdicts, &cg);
	if (v && v->gen == gen)
		return v->watched;
	struct verdict nv = { .gen = gen, .watched = 0 };
	/* Root to leaf: the deepest entry wins, so an excluded cgroup inside a watched
	 * subtree (the sensor's own pod) stays quiet. */
	for (int level = 0; level < RW_CGROUP_DEPTH; level++) {
		u64 anc = bpf_get_current_ancestor_cgroup_id(level);
		if (!anc)
			break;
		u8 *mark = bpf_map_lookup_elem(&watched, &anc);
		if (mark)
			nv.watched = *mark == RW_WATCH;
		if (anc == cg)
			break;
	}
	bpf_map_update_elem(&verdicts, &cg, &nv, BPF_ANY);
	return nv.watched;
}

/* This CPU's slot for cg if it already holds the verdict on cg, else NULL. */
static __always_inline struct verdict_slot *fresh_slot(u64 cg, u32 gen)
{
	u32 index = cg & (RW_SLOTS - 1);
	struct verdict_slot *slot = bpf_map_lookup_elem(&last_verdict, &index);
	if (slot && slot->gen == gen && slot->cgroup_id == cg)
		return slot;
	return NULL;
}

/* Whether the current task is observed: its cgroup (or an ancestor) is watched and it is
 * not the sensor. *slotp is this CPU's slot for cg, now holding cg (NULL if none). */
static __always_inline bool is_watched(struct config *cfg, u64 cg, struct verdict_slot **slotp)
{
	u32 gen = cfg->gen;
	u32 index = cg & (RW_SLOTS - 1);
	bool watched_now;
	struct verdict_slot *slot = bpf_map_lookup_elem(&last_verdict, &index);
	*slotp = NULL;
	if (slot && slot->gen == gen && slot->cgroup_id == cg) {
		watched_now = slot->watched;
		*slotp = slot;
	} else {
		watched_now = compute_verdict(cg, gen);
		if (slot) {
			/* volatile + barriers: keep clang from dropping the first store or reordering. */
			*(volatile u32 *)&slot->gen = 0;
			asm volatile("" ::: "memory");
			slot->cgroup_id = cg;
			slot->watched = watched_now;
			for (int i = 0; i < RW_SYSCALL_WORDS; i++)
				slot->known[i] = 0;
			slot->caps_known = 0;
			slot->open_dentry = 0;
			slot->open_sent_ns = 0;
			slot->open_fold_tick = 0;
			asm volatile("" ::: "memory");
			*(volatile u32 *)&slot->gen = gen;
			*slotp = slot;
		}
	}
	if (!watched_now)
		return false;
	/* A sensor pod runs under kubepods in its own cgroup namespace, where it cannot name
	 * its cgroup; its pid is always known. Observing itself would feed back on its own I/O.
	 * Checked only once the cgroup is known to be watched: unwatched tasks pay nothing. */
	if (cfg->self_tgid && (bpf_get_current_pid_tgid() >> 32) == cfg->self_tgid)
		return false;
	return true;
}

/* The state of a watched cgroup, created on first use. */
static __always_inline struct cg_state *cg_state_of(u64 cg)
{
	struct cg_state *st = bpf_map_lookup_elem(&cgstate, &cg);
	if (st)
		return st;
	struct cg_state fresh = {};
	bpf_map_update_elem(&cgstate, &cg, &fresh, BPF_NOEXIST);
	st = bpf_map_lookup_elem(&cgstate, &cg);
	if (!st)
		stat_add(RW_STAT_STATE_FULL, 1);
	return st;
}

/* State of the current cgroup if it (or an ancestor) is watched, else NULL. */
static __always_inline struct cg_state *watched_state(u64 cg)
{
	struct config *cfg = get_config();
	struct verdict_slot *slot;
	if (!cfg || !is_watched(cfg, cg, &slot))
		return NULL;
	return cg_state_of(cg);
}

/* True if an identical event went out less than the dedup window ago (then it is counted
 * in stats[fold_stat] and must not be sent). Otherwise records now as its last send.
 * *sent_ns is when the event was last sent either way. */
static __always_inline bool recently_sent(struct config *cfg, struct dedup_key *key, u32 fold_stat, u64 now,
					  u64 *sent_ns)
{
	*sent_ns = now;
	if (!cfg->dedup_window_ns)
		return false;
	u64 *last = bpf_map_lookup_elem(&recent, key);
	if (last) {
		u64 then = *last;
		if (now - then < cfg->dedup_window_ns) {
			*sent_ns = then;
			stat_add(fold_stat, 1);
			return true;
		}
	}
	bpf_map_update_elem(&recent, key, &now, BPF_ANY);
	return false;
}

static __always_inline void fill_header(struct event_header *h, u32 type, u64 cg)
{
	u64 id = bpf_get_current_pid_tgid();
	h->type = type;
	h->pid = id >> 32;
	h->tid = (u32)id;
	h->losses = 0;
	h->cgroup_id = cg;
	h->ts_ns = bpf_ktime_get_ns();
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

/* Emit an event and carry the cgroup's pending loss count in it: a failed output adds
 * to the count, a successful one subtracts what it reported. */
static __always_inline long emit(struct cg_state *st, struct event_header *h, void *data, u64 size)
{
	u64 pending = st->losses;
	h->losses = pending > 0xffffffffULL ? 0xffffffffU : (u32)pending;
	u64 wake = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= RW_WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP
										    : BPF_RB_NO_WAKEUP;
	long err = bpf_ringbuf_output(&events, data, size, wake);
	if (err) {
		__sync_fetch_and_add(&st->losses, 1);
		stat_add(RW_STAT_OUTPUT_FAILED, 1);
		return err;
	}
	if (pending)
		__sync_fetch_and_sub(&st->losses, pending);
	stat_add(RW_STAT_EMITTED, 1);
	return 0;
}

/* Emit a deduplicated event; a failed send forgets it so the next repeat is not folded. */
static __always_inline long emit_once(struct cg_state *st, struct event_header *h, void *data, u64 size,
				      struct dedup_key *key)
{
	long err = emit(st, h, data, size);
	if (err)
		bpf_map_delete_elem(&recent, key);
	return err;
}

#ifdef RW_HAVE_RDONLY_CAST
/* Linux 6.2+: a pointer read from memory becomes one the program may load through directly
 * (each load fault-safe, as with bpf_probe_read_kernel, without a helper call per field). */
extern void *bpf_rdonly_cast(const void *obj, u32 btf_id) __ksym;
#define RW_FILE(f) ((struct file *)bpf_rdonly_cast((f), bpf_core_type_id_kernel(struct file)))
#define RW_FILE_DENTRY(f) (RW_FILE(f)->f_path.dentry)
#define RW_FILE_INO(f) (RW_FILE(f)->f_inode->i_ino)
#else
#define RW_FILE_DENTRY(f) BPF_CORE_READ((f), f_path.dentry)
#define RW_FILE_INO(f) BPF_CORE_READ((f), f_inode, i_ino)
#endif

/* The struct file behind fd in the current task, or NULL. */
static __always_inline struct file *fd_file(long fd)
{
	if (fd < 0)
		return NULL;
	/* Direct loads through the task's BTF pointers: each BPF_CORE_READ would be a helper call. */
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = task->files->fdt;
	if (!fdt)
		return NULL;
	unsigned int max = fdt->max_fds;
	if ((unsigned long)fd >= max)
		return NULL;
	struct file **fds = fdt->fd;
#ifdef RW_HAVE_RDONLY_CAST
	/* The slot read as the first member of a struct whose BTF starts with a struct file
	 * pointer (kiocb.ki_filp): one fault-safe load instead of a bpf_probe_read_kernel call
	 * (measured here: 58 -> 30 ns for the whole fd lookup, bpf_stats on). The offset check
	 * is resolved at load (CO-RE): a kernel that moved ki_filp takes the helper. */
	if (bpf_core_field_offset(struct kiocb, ki_filp) == 0) {
		struct kiocb *holder = bpf_rdonly_cast((void *)&fds[fd], bpf_core_type_id_kernel(struct kiocb));
		return holder->ki_filp;
	}
#endif
	struct file *f = NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

/* The struct sock behind fd if fd is a socket, else NULL. */
static __always_inline struct sock *fd_sock(long fd, short *type)
{
	struct file *f = fd_file(fd);
	if (!f)
		return NULL;
	umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & RW_S_IFMT) != RW_S_IFSOCK)
		return NULL;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	if (!sock)
		return NULL;
	*type = BPF_CORE_READ(sock, type);
	return BPF_CORE_READ(sock, sk);
}

/* Family, port (host order) and address of a user-space sockaddr. */
static __always_inline int read_user_sockaddr(const void *uaddr, u16 *family, u16 *port, u8 addr[16])
{
	u16 fam = 0;
	if (!uaddr || bpf_probe_read_user(&fam, sizeof(fam), uaddr))
		return -1;
	u16 be_port = 0;
	if (fam == RW_AF_INET) {
		bpf_probe_read_user(&be_port, sizeof(be_port), uaddr + 2);
		bpf_probe_read_user(addr, 4, uaddr + 4);
	} else if (fam == RW_AF_INET6) {
		bpf_probe_read_user(&be_port, sizeof(be_port), uaddr + 2);
		bpf_probe_read_user(addr, 16, uaddr + 8);
	} else {
		return -1;
	}
	*family = fam;
	*port = bpf_ntohs(be_port);
	return 0;
}

/* The syscall's registers: its number in orig_ax, its arguments in di, si, dx, r10, r8. */
static __always_inline struct pt_regs *syscall_regs(void)
{
	return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
}

/* Remote end of a connected socket. */
static __always_inline void sock_peer(struct sock *sk, u16 *family, u16 *port, u8 addr[16])
{
	u16 fam = BPF_CORE_READ(sk, __sk_common.skc_family);
	*family = fam;
	*port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (fam == RW_AF_INET6)
		bpf_core_read(addr, 16, &sk->__sk_common.skc_v6_daddr);
	else
		bpf_core_read(addr, 4, &sk->__sk_common.skc_daddr);
}

#endif

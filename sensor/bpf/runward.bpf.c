// SPDX-License-Identifier: GPL-2.0
/* Runward sensor: observation-mode programs attached to tracepoints only.
 *
 * Everything hangs off tracepoints because they are stable, cheap and work on kernels built
 * without kprobes or BPF trampolines (fentry/LSM programs), which is the case on some hardened
 * and micro-VM kernels. Only the syscall set needs every syscall (raw `sys_enter`); each other
 * event has a hook that fires for its own syscall or socket operation alone, so the rest of a
 * node's syscalls pay nothing for it. Events from cgroups outside the watched subtrees are
 * dropped here, before any copy or output.
 */
#include "common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* The layouts below are mirrored by sensor/wire.py. */
struct exec_event {
	struct event_header h;
	u32 ppid;
	u32 args_len;
	char parent_comm[RW_COMM_LEN];
	char filename[RW_FILENAME_LEN];
	char args[RW_ARGS_LEN];
};

struct exit_event {
	struct event_header h;
	s32 exit_code; /* wait status: (code << 8) | signal */
	u32 _pad;
};

struct open_event {
	struct event_header h;
	u64 flags;
	u32 path_len;
	u32 path_flags;
	/* leaf-first NUL-terminated components: "passwd\0etc\0" is /etc/passwd */
	char path[RW_PATH_LEN + RW_NAME_MAX];
};

struct conn_event {
	struct event_header h;
	u16 family;
	u16 port; /* connect: remote port; accept: local port */
	u16 protocol;
	u16 _pad;
	s32 ret;
	u32 _pad2;
	u8 addr[16]; /* connect: remote address; accept: peer address */
};

struct dns_event {
	struct event_header h;
	u16 family;
	u16 port;
	u8 response;
	u8 _pad[3];
	u32 len;
	u8 addr[16];
	u8 payload[RW_DNS_LEN];
};

struct cap_event {
	struct event_header h;
	s32 cap;
	s32 ret;
};

/* Large events are built in per-CPU scratch space: the BPF stack is 512 bytes. */
#define SCRATCH(name, value_t)                               \
	struct {                                            \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);    \
		__uint(max_entries, 1);                     \
		__type(key, u32);                           \
		__type(value, value_t);                     \
	} name SEC(".maps")

SCRATCH(exec_scratch, struct exec_event);
SCRATCH(open_scratch, struct open_event);
SCRATCH(dns_scratch, struct dns_event);

/* The context of a syscalls:sys_exit_* tracepoint program. */
struct rw_sys_exit_args {
	u64 _common;
	s32 nr;
	s32 _pad;
	s64 ret;
};

static __always_inline void *scratch(void *map)
{
	u32 zero = 0;
	return bpf_map_lookup_elem(map, &zero);
}

/* ---------------------------------------------------------------- processes */

SEC("tp_btf/sched_process_exec")
int BPF_PROG(rw_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	u64 cg = current_cgroup_id();
	struct cg_state *st = watched_state(cg);
	if (!st)
		return 0;
	struct exec_event *e = scratch(&exec_scratch);
	if (!e)
		return 0;
	fill_header(&e->h, RW_EV_EXEC, cg);
	struct task_struct *parent = BPF_CORE_READ(p, real_parent);
	e->ppid = BPF_CORE_READ(parent, tgid);
	BPF_CORE_READ_STR_INTO(&e->parent_comm, parent, comm);
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), BPF_CORE_READ(bprm, filename));

	/* The new image's argv sits between arg_start and arg_end of the new mm. */
	struct mm_struct *mm = BPF_CORE_READ(p, mm);
	unsigned long start = BPF_CORE_READ(mm, arg_start);
	unsigned long end = BPF_CORE_READ(mm, arg_end);
	u64 len = end > start ? end - start : 0;
	if (len > RW_ARGS_LEN)
		len = RW_ARGS_LEN;
	e->args_len = 0;
	if (len && !bpf_probe_read_user(e->args, len, (void *)start))
		e->args_len = len;
	emit(st, &e->h, e, sizeof(*e));
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(rw_exit, struct task_struct *p)
{
	u64 cg = current_cgroup_id();
	struct cg_state *st = watched_state(cg);
	if (!st)
		return 0;
	/* One event per process, not per thread: only when the last thread goes. */
	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;
	struct exit_event e = {};
	fill_header(&e.h, RW_EV_EXIT, cg);
	e.exit_code = BPF_CORE_READ(p, exit_code);
	emit(st, &e.h, &e, sizeof(e));
	return 0;
}

/* ---------------------------------------------------------------- DNS */

/* Sockets a DNS question was sent from without being connected (sendto with an address):
 * their answers come back through recvfrom()/recvmsg() and this names the server. */
struct dns_peer {
	u16 family;
	u16 port;
	u32 _pad;
	u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, u64);
	__type(value, struct dns_peer);
} dns_socks SEC(".maps");

/* Copy a DNS payload from user memory and emit it; the caller has checked the port. */
static __always_inline void dns_emit(struct cg_state *st, u64 cg, u16 family, u16 port, const u8 *addr,
				     const void *buf, u64 len, u8 response)
{
	struct dns_event *e = scratch(&dns_scratch);
	if (!e || !buf)
		return;
	__builtin_memcpy(e->addr, addr, sizeof(e->addr));
	fill_header(&e->h, RW_EV_DNS, cg);
	e->family = family;
	e->port = port;
	e->response = response;
	e->len = len;
	u64 n = len;
	if (n > RW_DNS_LEN)
		n = RW_DNS_LEN;
	if (bpf_probe_read_user(e->payload, n, buf))
		return;
	emit(st, &e->h, e, sizeof(*e));
}

/* A question sent with sendto/sendmsg/sendmmsg (seen on syscall entry, its buffer intact). */
static __always_inline void dns_question(struct cg_state *st, u64 cg, long fd, const void *buf, u64 len,
					 const void *uaddr)
{
	short type = 0;
	struct sock *sk = fd_sock(fd, &type);
	if (!sk || type != RW_SOCK_DGRAM)
		return;
	if (BPF_CORE_READ(sk, sk_protocol) != RW_IPPROTO_UDP)
		return;
	struct dns_peer peer = {};
	if (uaddr) {
		if (read_user_sockaddr(uaddr, &peer.family, &peer.port, peer.addr))
			return;
	} else {
		sock_peer(sk, &peer.family, &peer.port, peer.addr);
	}
	if (!bpf_map_lookup_elem(&dns_ports, &peer.port))
		return;
	if (uaddr) {
		u64 key = (u64)sk;
		bpf_map_update_elem(&dns_socks, &key, &peer, BPF_ANY);
	}
	dns_emit(st, cg, peer.family, peer.port, peer.addr, buf, len, 0);
}

/* First iovec of a user msghdr, and its msg_name. */
static __always_inline int msghdr_first(const struct user_msghdr *umsg, void **base, u64 *len, void **name)
{
	struct user_msghdr m = {};
	if (bpf_probe_read_user(&m, sizeof(m), umsg))
		return -1;
	struct iovec iov = {};
	if (!m.msg_iov || !m.msg_iovlen || bpf_probe_read_user(&iov, sizeof(iov), m.msg_iov))
		return -1;
	*base = iov.iov_base;
	*len = iov.iov_len;
	*name = m.msg_name;
	return 0;
}

static __always_inline void dns_send(struct cg_state *st, u64 cg, struct pt_regs *regs, long id)
{
	long fd = regs->di;
	void *base = NULL, *name = NULL;
	u64 len = 0;
	if (id == RW_NR_sendto) {
		base = (void *)regs->si;
		len = regs->dx;
		name = (void *)regs->r8;
	} else if (id == RW_NR_sendmsg) {
		if (msghdr_first((void *)regs->si, &base, &len, &name))
			return;
	} else {
		/* sendmmsg: glibc sends the A and AAAA questions in one call: report both. */
		struct mmsghdr *vec = (void *)regs->si;
		unsigned long vlen = regs->dx;
		if (vlen >= 1 && !msghdr_first(&vec[0].msg_hdr, &base, &len, &name))
			dns_question(st, cg, fd, base, len, name);
		if (vlen >= 2 && !msghdr_first(&vec[1].msg_hdr, &base, &len, &name))
			dns_question(st, cg, fd, base, len, name);
		return;
	}
	dns_question(st, cg, fd, base, len, name);
}

/* The DNS server a UDP socket talks to, if it is one: its connected peer on a DNS port
 * (glibc and Go connect their sockets), else the server it last sent a question to. */
static __always_inline bool dns_server_of(struct sock *sk, u16 protocol, u16 dport, struct dns_peer *peer)
{
	if (protocol != RW_IPPROTO_UDP)
		return false;
	if (dport && bpf_map_lookup_elem(&dns_ports, &dport)) {
		sock_peer(sk, &peer->family, &peer->port, peer->addr);
		return true;
	}
	u64 key = (u64)sk;
	struct dns_peer *known = bpf_map_lookup_elem(&dns_socks, &key);
	if (!known)
		return false;
	*peer = *known;
	return true;
}

/* An answer read from a DNS socket: the data is already in the user buffer the syscall was
 * given (read, recvfrom or recvmsg). */
static __always_inline void dns_answer(struct config *cfg, struct sock *sk, u16 protocol, u16 dport, long ret)
{
	/* Watched first: the verdict is answered from a per-CPU slot, the socket check is a
	 * hash lookup, and most UDP receives on a node are not from watched tasks. */
	u64 cg = current_cgroup_id();
	struct verdict_slot *slot;
	if (!is_watched(cfg, cg, &slot))
		return;
	struct dns_peer peer = {};
	if (!dns_server_of(sk, protocol, dport, &peer))
		return;
	struct pt_regs *regs = syscall_regs();
	long id = regs->orig_ax;
	void *base = NULL, *name = NULL;
	u64 len = 0;
	if (id == RW_NR_recvfrom || (id == RW_NR_read && cfg->sock_rw)) {
		base = (void *)regs->si;
		len = regs->dx;
	} else if (id != RW_NR_recvmsg || msghdr_first((void *)regs->si, &base, &len, &name)) {
		return;
	}
	struct cg_state *st = cg_state_of(cg);
	if (st)
		dns_emit(st, cg, peer.family, peer.port, peer.addr, base, (u64)ret < len ? (u64)ret : len, 1);
}

#ifdef RW_HAVE_SOCK_TRACEPOINTS
/* Answers, on every receive from a socket (read, recvfrom, recvmsg alike): fires for socket
 * receives only, so a file read() costs nothing, and the socket comes without a file-table
 * lookup. */
SEC("tp_btf/sock_recv_length")
int BPF_PROG(rw_sock_recv, struct sock *sk, int ret, int flags)
{
	if (ret <= 0 || (flags & RW_MSG_PEEK))
		return 0;
	/* Direct loads: this runs on every socket receive of the node. */
	u16 protocol = sk->sk_protocol;
	if (protocol != RW_IPPROTO_UDP)
		return 0;
	struct config *cfg = get_config();
	if (cfg)
		dns_answer(cfg, sk, protocol, bpf_ntohs(sk->__sk_common.skc_dport), ret);
	return 0;
}

/* Questions written with write() on a connected socket (Go's resolver). sendto, sendmsg
 * and sendmmsg are read on syscall entry instead: sendmmsg's messages are not told apart here. */
SEC("tp_btf/sock_send_length")
int BPF_PROG(rw_sock_send, struct sock *sk, int ret, int flags)
{
	if (ret <= 0 || sk->sk_protocol != RW_IPPROTO_UDP)
		return 0;
	u16 dport = bpf_ntohs(sk->__sk_common.skc_dport);
	if (!dport)
		return 0;
	u64 cg = current_cgroup_id();
	struct config *cfg = get_config();
	struct verdict_slot *slot;
	if (!cfg || !cfg->sock_rw || !is_watched(cfg, cg, &slot))
		return 0;
	if (!bpf_map_lookup_elem(&dns_ports, &dport))
		return 0;
	struct pt_regs *regs = syscall_regs();
	if (regs->orig_ax != RW_NR_write)
		return 0;
	struct cg_state *st = cg_state_of(cg);
	if (!st)
		return 0;
	struct dns_peer peer = {};
	sock_peer(sk, &peer.family, &peer.port, peer.addr);
	u64 len = regs->dx;
	dns_emit(st, cg, peer.family, peer.port, peer.addr, (void *)regs->si, (u64)ret < len ? (u64)ret : len, 0);
	return 0;
}
#else
/* Before Linux 6.3 there are no socket send/receive tracepoints: answers are read on the
 * exit of recvfrom and recvmsg, and read()/write() on a DNS socket (Go's resolver) are not
 * seen, which would cost a file-table lookup on every read of the node. */
static __always_inline void dns_answer_fd(struct rw_sys_exit_args *ctx)
{
	if (ctx->ret <= 0)
		return;
	struct config *cfg = get_config();
	if (!cfg)
		return;
	short type = 0;
	struct sock *sk = fd_sock(syscall_regs()->di, &type);
	if (sk && type == RW_SOCK_DGRAM)
		dns_answer(cfg, sk, BPF_CORE_READ(sk, sk_protocol), bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport)),
			   ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_recvfrom")
int rw_recvfrom(struct rw_sys_exit_args *ctx)
{
	dns_answer_fd(ctx);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_recvmsg")
int rw_recvmsg(struct rw_sys_exit_args *ctx)
{
	dns_answer_fd(ctx);
	return 0;
}
#endif

/* ---------------------------------------------------------------- syscalls */

SEC("tp_btf/sys_enter")
int BPF_PROG(rw_sys_enter, struct pt_regs *regs, long id)
{
	u64 cg = current_cgroup_id();
	struct config *cfg = get_config();
	if (!cfg)
		return 0;
	bool question = id == RW_NR_sendto || id == RW_NR_sendmsg || id == RW_NR_sendmmsg;
	bool numbered = id >= 0 && id < RW_SYSCALL_WORDS * 64;
	u64 word = ((u64)id >> 6) & (RW_SYSCALL_WORDS - 1);
	u64 bit = 1ULL << (id & 63);
	/* The common case, answered from this CPU's slot: an unwatched task, or a syscall the
	 * cgroup's set already holds. */
	struct verdict_slot *slot = fresh_slot(cg, cfg->gen);
	if (slot && (!slot->watched || (!question && (!numbered || (slot->known[word] & bit)))))
		return 0;
	if (!is_watched(cfg, cg, &slot))
		return 0;
	struct cg_state *st = cg_state_of(cg);
	if (!st)
		return 0;
	/* The syscall set is aggregated here, never sent per call. */
	if (numbered) {
		if (!(st->syscalls[word] & bit))
			__sync_fetch_and_or(&st->syscalls[word], bit);
		if (slot)
			slot->known[word] |= bit;
	}
	if (question)
		dns_send(st, cg, regs, id);
	return 0;
}

/* Walk dentries from a file up to the task's root, crossing mounts, and write the
 * components leaf-first into buf. The kernel's d_path() is not callable from
 * tracepoints, hence the walk. */
static __always_inline u32 walk_path(struct file *f, char *buf, u32 *path_flags)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct dentry *root_dentry = BPF_CORE_READ(task, fs, root.dentry);
	struct vfsmount *root_mnt = BPF_CORE_READ(task, fs, root.mnt);
	struct dentry *dentry = BPF_CORE_READ(f, f_path.dentry);
	struct vfsmount *vfsmnt = BPF_CORE_READ(f, f_path.mnt);
	u64 mnt_off = bpf_core_field_offset(struct mount, mnt);
	struct mount *mnt = (void *)vfsmnt - mnt_off;
	u32 off = 0;

	for (int i = 0; i < RW_PATH_DEPTH; i++) {
		if (dentry == root_dentry && vfsmnt == root_mnt) {
			*path_flags |= RW_PATH_COMPLETE;
			break;
		}
		if (dentry == BPF_CORE_READ(vfsmnt, mnt_root)) {
			struct mount *parent = BPF_CORE_READ(mnt, mnt_parent);
			if (parent == mnt) {
				*path_flags |= RW_PATH_COMPLETE;
				break;
			}
			dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = parent;
			vfsmnt = (void *)parent + mnt_off;
			continue;
		}
		struct dentry *up = BPF_CORE_READ(dentry, d_parent);
		if (up == dentry) {
			*path_flags |= RW_PATH_COMPLETE;
			break;
		}
		if (off >= RW_PATH_LEN) {
			*path_flags |= RW_PATH_TRUNCATED;
			break;
		}
		const unsigned char *name = BPF_CORE_READ(dentry, d_name.name);
		long n = bpf_probe_read_kernel_str(buf + (off & (RW_PATH_LEN - 1)), RW_NAME_MAX, name);
		if (n <= 0)
			break;
		off += n;
		dentry = up;
	}
	return off;
}

/* File opens are reported on exit so that only opens that produced a file are seen, with
 * the path the kernel resolved (symlinks, relative paths and dirfds included). */
static __always_inline void open_event(long id, long fd)
{
	u64 cg = current_cgroup_id();
	struct config *cfg = get_config();
	struct verdict_slot *slot;
	if (!cfg || !is_watched(cfg, cg, &slot))
		return;
	struct file *f = fd_file(fd);
	if (!f)
		return;
	/* The requested flags, not f_flags: the kernel strips O_CREAT and O_TRUNC from those. */
	struct pt_regs *regs = syscall_regs();
	u64 flags = 0;
	if (id == RW_NR_open)
		flags = regs->si;
	else if (id == RW_NR_creat)
		flags = RW_O_CREAT | RW_O_WRONLY | RW_O_TRUNC;
	else if (id == RW_NR_openat)
		flags = regs->dx;
	else
		bpf_probe_read_user(&flags, sizeof(flags), (void *)regs->dx); /* open_how.flags */
	/* The dentry names the path and the inode number guards against a freed dentry's
	 * address being reused within the window: no path walk is needed to fold. */
	struct dedup_key key = {
		.cgroup_id = cg,
		.a = (u64)RW_FILE_DENTRY(f),
		.b = RW_FILE_INO(f),
		.kind = RW_EV_OPEN,
		.extra = (u32)flags,
	};
	u64 now;
	/* The same file opened again on this CPU: folded without a dedup-map lookup. A clock
	 * read costs more than the rest of the fold here (85 of ~240 ns per open, measured with
	 * bpf_stats), so it is read once per tick: while jiffies has not moved since a read found
	 * the window open for RW_FOLD_MARGIN_NS more (far more than a tick), the repeat is
	 * inside the window too. */
	if (slot && cfg->dedup_window_ns && slot->open_dentry == key.a && slot->open_ino == key.b &&
	    slot->open_flags == flags) {
		u64 tick = bpf_jiffies64();
		if (tick == slot->open_fold_tick) {
			stat_add(RW_STAT_FOLDED_OPEN, 1);
			return;
		}
		now = bpf_ktime_get_ns();
		u64 age = now - slot->open_sent_ns;
		if (age < cfg->dedup_window_ns) {
			if (age + RW_FOLD_MARGIN_NS < cfg->dedup_window_ns)
				slot->open_fold_tick = tick;
			stat_add(RW_STAT_FOLDED_OPEN, 1);
			return;
		}
	} else {
		now = bpf_ktime_get_ns();
	}
	u64 sent_ns;
	bool folded = recently_sent(cfg, &key, RW_STAT_FOLDED_OPEN, now, &sent_ns);
	if (slot) {
		slot->open_dentry = key.a;
		slot->open_ino = key.b;
		slot->open_flags = flags;
		slot->open_sent_ns = sent_ns;
		slot->open_fold_tick = 0;
	}
	if (folded)
		return;
	struct cg_state *st = cg_state_of(cg);
	struct open_event *e = scratch(&open_scratch);
	if (!st || !e) {
		if (slot) {
			slot->open_sent_ns = 0;
			slot->open_fold_tick = 0;
		}
		bpf_map_delete_elem(&recent, &key);
		return;
	}
	fill_header(&e->h, RW_EV_OPEN, cg);
	e->flags = flags;
	e->path_flags = 0;
	u64 len = walk_path(f, e->path, &e->path_flags);
	/* The barrier stops clang from bounds-checking a copy and passing the original. */
	barrier_var(len);
	if (len > RW_PATH_LEN + RW_NAME_MAX)
		len = RW_PATH_LEN + RW_NAME_MAX;
	e->path_len = len;
	if (emit_once(st, &e->h, e, offsetof(struct open_event, path) + len, &key) && slot) {
		slot->open_sent_ns = 0;
		slot->open_fold_tick = 0;
	}
}

static __always_inline void conn_event(long fd, const void *uaddr, long ret, u32 type)
{
	u64 cg = current_cgroup_id();
	struct config *cfg = get_config();
	struct verdict_slot *slot;
	if (!cfg || !is_watched(cfg, cg, &slot))
		return;
	short sock_type = 0;
	struct sock *sk = fd_sock(fd, &sock_type);
	if (!sk)
		return;
	u16 protocol = BPF_CORE_READ(sk, sk_protocol);
	if (protocol != RW_IPPROTO_TCP && protocol != RW_IPPROTO_UDP)
		return;
	struct conn_event e = {};
	if (type == RW_EV_CONNECT) {
		if (read_user_sockaddr(uaddr, &e.family, &e.port, e.addr))
			return;
	} else {
		u16 peer_port = 0;
		sock_peer(sk, &e.family, &peer_port, e.addr);
		e.port = BPF_CORE_READ(sk, __sk_common.skc_num);
		if (e.family != RW_AF_INET && e.family != RW_AF_INET6)
			return;
	}
	struct dedup_key key = { .cgroup_id = cg, .kind = type | (protocol << 8), .extra = e.port | (e.family << 16) };
	__builtin_memcpy(&key.a, e.addr, 8);
	__builtin_memcpy(&key.b, e.addr + 8, 8);
	u64 sent_ns;
	if (recently_sent(cfg, &key, type == RW_EV_CONNECT ? RW_STAT_FOLDED_CONNECT : RW_STAT_FOLDED_ACCEPT,
			  bpf_ktime_get_ns(), &sent_ns))
		return;
	struct cg_state *st = cg_state_of(cg);
	if (!st) {
		bpf_map_delete_elem(&recent, &key);
		return;
	}
	fill_header(&e.h, type, cg);
	e.protocol = protocol;
	e.ret = ret;
	emit_once(st, &e.h, &e, sizeof(e), &key);
}

/* Each exit-side event has its own syscalls:sys_exit_* tracepoint: the kernel checks a
 * bitmap of enabled syscalls before it runs anything, so the node's other syscalls (reads,
 * writes, closes...) do not run a program on exit at all. */
SEC("tracepoint/syscalls/sys_exit_openat")
int rw_openat(struct rw_sys_exit_args *ctx)
{
	if (ctx->ret >= 0)
		open_event(RW_NR_openat, ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_open")
int rw_open(struct rw_sys_exit_args *ctx)
{
	if (ctx->ret >= 0)
		open_event(RW_NR_open, ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int rw_openat2(struct rw_sys_exit_args *ctx)
{
	if (ctx->ret >= 0)
		open_event(RW_NR_openat2, ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_creat")
int rw_creat(struct rw_sys_exit_args *ctx)
{
	if (ctx->ret >= 0)
		open_event(RW_NR_creat, ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int rw_connect(struct rw_sys_exit_args *ctx)
{
	struct pt_regs *regs = syscall_regs();
	conn_event(regs->di, (void *)regs->si, ctx->ret, RW_EV_CONNECT);
	return 0;
}

/* accept: `address` = peer, `port` = *local* port (what an ingress NetworkPolicy needs). */
SEC("tracepoint/syscalls/sys_exit_accept")
int rw_accept(struct rw_sys_exit_args *ctx)
{
	if (ctx->ret >= 0)
		conn_event(ctx->ret, NULL, ctx->ret, RW_EV_ACCEPT);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int rw_accept4(struct rw_sys_exit_args *ctx)
{
	if (ctx->ret >= 0)
		conn_event(ctx->ret, NULL, ctx->ret, RW_EV_ACCEPT);
	return 0;
}

/* ---------------------------------------------------------------- capabilities */

#ifdef RW_HAVE_CAP_TRACEPOINT
/* capability:cap_capable exists since Linux 6.14; the build leaves this out before. */
SEC("tp_btf/cap_capable")
int BPF_PROG(rw_capable, const struct cred *cred, struct user_namespace *target_ns,
	     const struct user_namespace *capable_ns, int cap, int ret)
{
	if (cap < 0 || cap > 63)
		return 0;
	u64 cg = current_cgroup_id();
	struct config *cfg = get_config();
	if (!cfg)
		return 0;
	/* A set, like syscalls: only the first check of each capability in a cgroup is sent,
	 * and this CPU's slot knows the ones already sent without a state lookup. */
	u64 bit = 1ULL << cap;
	struct verdict_slot *slot = fresh_slot(cg, cfg->gen);
	if (slot && (!slot->watched || (slot->caps_known & bit)))
		return 0;
	if (!is_watched(cfg, cg, &slot))
		return 0;
	struct cg_state *st = cg_state_of(cg);
	if (!st)
		return 0;
	if (st->caps_seen & bit) {
		if (slot)
			slot->caps_known |= bit;
		return 0;
	}
	__sync_fetch_and_or(&st->caps_seen, bit);
	if (slot)
		slot->caps_known |= bit;
	struct cap_event e = {};
	fill_header(&e.h, RW_EV_CAP, cg);
	e.cap = cap;
	e.ret = ret;
	emit(st, &e.h, &e, sizeof(e));
	return 0;
}
#endif

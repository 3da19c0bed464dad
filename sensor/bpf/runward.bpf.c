// SPDX-License-Identifier: GPL-2.0
/* Runward sensor: observation-mode programs attached to BTF tracepoints only.
 *
 * Everything hangs off tracepoints (tp_btf) because they are stable, cheap and work on
 * kernels built without kprobes or BPF trampolines (fentry/LSM programs), which is the
 * case on some hardened and micro-VM kernels. Events from cgroups outside the watched
 * subtrees are dropped here, before any copy or perf output.
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

static __always_inline void *scratch(void *map)
{
	u32 zero = 0;
	return bpf_map_lookup_elem(map, &zero);
}

/* ---------------------------------------------------------------- processes */

SEC("tp_btf/sched_process_exec")
int BPF_PROG(rw_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	u64 cg = bpf_get_current_cgroup_id();
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
	emit(ctx, st, &e->h, e, sizeof(*e));
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(rw_exit, struct task_struct *p)
{
	u64 cg = bpf_get_current_cgroup_id();
	struct cg_state *st = watched_state(cg);
	if (!st)
		return 0;
	/* One event per process, not per thread: only when the last thread goes. */
	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;
	struct exit_event e = {};
	fill_header(&e.h, RW_EV_EXIT, cg);
	e.exit_code = BPF_CORE_READ(p, exit_code);
	emit(ctx, st, &e.h, &e, sizeof(e));
	return 0;
}

/* ---------------------------------------------------------------- DNS */

static __always_inline void dns_event(void *ctx, struct cg_state *st, u64 cg, long fd, const void *buf,
				      u64 len, const void *uaddr, u8 response)
{
	short type = 0;
	struct sock *sk = fd_sock(fd, &type);
	if (!sk || type != RW_SOCK_DGRAM)
		return;
	if (BPF_CORE_READ(sk, sk_protocol) != RW_IPPROTO_UDP)
		return;
	struct dns_event *e = scratch(&dns_scratch);
	if (!e)
		return;
	__builtin_memset(e->addr, 0, sizeof(e->addr));
	u16 family = 0, port = 0;
	if (uaddr) {
		if (read_user_sockaddr(uaddr, &family, &port, e->addr))
			return;
	} else {
		sock_peer(sk, &family, &port, e->addr);
	}
	if (!bpf_map_lookup_elem(&dns_ports, &port))
		return;
	fill_header(&e->h, RW_EV_DNS, cg);
	e->family = family;
	e->port = port;
	e->response = response;
	e->len = len;
	u64 n = len;
	if (n > RW_DNS_LEN)
		n = RW_DNS_LEN;
	if (!buf || bpf_probe_read_user(e->payload, n, buf))
		return;
	emit(ctx, st, &e->h, e, sizeof(*e));
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

static __always_inline void dns_send(void *ctx, struct cg_state *st, u64 cg, struct pt_regs *regs, long id)
{
	long fd = regs->di;
	void *base = NULL, *name = NULL;
	u64 len = 0;
	if (id == RW_NR_sendto || id == RW_NR_write) {
		base = (void *)regs->si;
		len = regs->dx;
		name = id == RW_NR_sendto ? (void *)regs->r8 : NULL;
	} else if (id == RW_NR_sendmsg) {
		if (msghdr_first((void *)regs->si, &base, &len, &name))
			return;
	} else if (id == RW_NR_sendmmsg) {
		/* glibc sends the A and AAAA questions in one sendmmsg: report both. */
		struct mmsghdr *vec = (void *)regs->si;
		unsigned long vlen = regs->dx;
		if (vlen >= 1 && !msghdr_first(&vec[0].msg_hdr, &base, &len, &name))
			dns_event(ctx, st, cg, fd, base, len, name, 0);
		if (vlen >= 2 && !msghdr_first(&vec[1].msg_hdr, &base, &len, &name))
			dns_event(ctx, st, cg, fd, base, len, name, 0);
		return;
	} else {
		return;
	}
	dns_event(ctx, st, cg, fd, base, len, name, 0);
}

/* ---------------------------------------------------------------- syscalls */

SEC("tp_btf/sys_enter")
int BPF_PROG(rw_sys_enter, struct pt_regs *regs, long id)
{
	u64 cg = bpf_get_current_cgroup_id();
	struct cg_state *st = watched_state(cg);
	if (!st)
		return 0;
	/* The syscall set is aggregated here, never sent per call. */
	if (id >= 0 && id < RW_SYSCALL_WORDS * 64)
		__sync_fetch_and_or(&st->syscalls[((u64)id >> 6) & (RW_SYSCALL_WORDS - 1)], 1ULL << (id & 63));
	if (id == RW_NR_sendto || id == RW_NR_sendmsg || id == RW_NR_sendmmsg) {
		dns_send(ctx, st, cg, regs, id);
	} else if (id == RW_NR_write && st->dns_connected) {
		struct config *cfg = get_config();
		if (cfg && cfg->sock_rw)
			dns_send(ctx, st, cg, regs, id);
	}
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

static __always_inline void open_event(void *ctx, struct pt_regs *regs, long id, long fd)
{
	u64 cg = bpf_get_current_cgroup_id();
	struct cg_state *st = watched_state(cg);
	if (!st)
		return;
	struct file *f = fd_file(fd);
	if (!f)
		return;
	/* The requested flags, not f_flags: the kernel strips O_CREAT and O_TRUNC from those. */
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
		.a = (u64)BPF_CORE_READ(f, f_path.dentry),
		.b = BPF_CORE_READ(f, f_inode, i_ino),
		.kind = RW_EV_OPEN,
		.extra = (u32)flags,
	};
	if (recently_sent(&key, RW_STAT_FOLDED_OPEN))
		return;
	struct open_event *e = scratch(&open_scratch);
	if (!e)
		return;
	fill_header(&e->h, RW_EV_OPEN, cg);
	e->flags = flags;
	e->path_flags = 0;
	u64 len = walk_path(f, e->path, &e->path_flags);
	/* The barrier stops clang from bounds-checking a copy and passing the original. */
	barrier_var(len);
	if (len > RW_PATH_LEN + RW_NAME_MAX)
		len = RW_PATH_LEN + RW_NAME_MAX;
	e->path_len = len;
	emit_once(ctx, st, &e->h, e, offsetof(struct open_event, path) + len, &key);
}

static __always_inline void conn_event(void *ctx, long fd, const void *uaddr, long ret, u32 type)
{
	u64 cg = bpf_get_current_cgroup_id();
	struct cg_state *st = watched_state(cg);
	if (!st)
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
		if (protocol == RW_IPPROTO_UDP && ret == 0 && !st->dns_connected &&
		    bpf_map_lookup_elem(&dns_ports, &e.port))
			st->dns_connected = 1;
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
	if (recently_sent(&key, type == RW_EV_CONNECT ? RW_STAT_FOLDED_CONNECT : RW_STAT_FOLDED_ACCEPT))
		return;
	fill_header(&e.h, type, cg);
	e.protocol = protocol;
	e.ret = ret;
	emit_once(ctx, st, &e.h, &e, sizeof(e), &key);
}

static __always_inline void dns_recv(void *ctx, struct pt_regs *regs, long id, long ret)
{
	u64 cg = bpf_get_current_cgroup_id();
	struct cg_state *st = watched_state(cg);
	if (!st)
		return;
	long fd = regs->di;
	if (id == RW_NR_recvfrom) {
		dns_event(ctx, st, cg, fd, (void *)regs->si, ret, (void *)regs->r8, 1);
	} else if (id == RW_NR_read) {
		if (st->dns_connected)
			dns_event(ctx, st, cg, fd, (void *)regs->si, ret, NULL, 1);
	} else {
		void *base = NULL, *name = NULL;
		u64 len = 0;
		if (!msghdr_first((void *)regs->si, &base, &len, &name))
			dns_event(ctx, st, cg, fd, base, ret < len ? ret : len, name, 1);
	}
}

/* One program for every exit-side event: each program attached to sys_exit costs every
 * syscall on the node a call, so they share one that bails out on the syscall number.
 * File opens are reported on exit so that only opens that produced a file are seen, with
 * the path the kernel resolved (symlinks, relative paths and dirfds included). */
SEC("tp_btf/sys_exit")
int BPF_PROG(rw_sys_exit, struct pt_regs *regs, long ret)
{
	long id = regs->orig_ax;
	if (id == RW_NR_openat || id == RW_NR_open || id == RW_NR_openat2 || id == RW_NR_creat) {
		if (ret >= 0)
			open_event(ctx, regs, id, ret);
	} else if (id == RW_NR_connect) {
		conn_event(ctx, regs->di, (void *)regs->si, ret, RW_EV_CONNECT);
	} else if (id == RW_NR_accept || id == RW_NR_accept4) {
		if (ret >= 0)
			conn_event(ctx, ret, NULL, ret, RW_EV_ACCEPT);
	} else if (id == RW_NR_recvfrom || id == RW_NR_recvmsg) {
		if (ret > 0)
			dns_recv(ctx, regs, id, ret);
	} else if (id == RW_NR_read && ret > 0) {
		struct config *cfg = get_config();
		if (cfg && cfg->sock_rw)
			dns_recv(ctx, regs, id, ret);
	}
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
	u64 cg = bpf_get_current_cgroup_id();
	struct cg_state *st = watched_state(cg);
	if (!st)
		return 0;
	/* A set, like syscalls: only the first check of each capability in a cgroup is sent. */
	u64 bit = 1ULL << cap;
	if (st->caps_seen & bit)
		return 0;
	__sync_fetch_and_or(&st->caps_seen, bit);
	struct cap_event e = {};
	fill_header(&e.h, RW_EV_CAP, cg);
	e.cap = cap;
	e.ret = ret;
	emit(ctx, st, &e.h, &e, sizeof(e));
	return 0;
}
#endif

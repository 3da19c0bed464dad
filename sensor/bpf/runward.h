/* Layouts shared by the BPF programs and the Python decoder (sensor/wire.py).
 *
 * sensor/wire.py reads the RW_* numeric defines from this file at import time, so a
 * size changed here changes the decoder too; the struct layouts themselves are mirrored
 * by hand there and checked by the kernel tests. Every struct is padded explicitly so
 * that clang and Python's struct module agree without relying on implicit alignment.
 */
#ifndef RUNWARD_H
#define RUNWARD_H

#define RW_EV_EXEC 1
#define RW_EV_EXIT 2
#define RW_EV_OPEN 3
#define RW_EV_CONNECT 4
#define RW_EV_ACCEPT 5
#define RW_EV_DNS 6
#define RW_EV_CAP 7

#define RW_COMM_LEN 16
#define RW_FILENAME_LEN 256
/* Powers of two: the programs mask offsets and lengths with (N - 1) for the verifier. */
#define RW_ARGS_LEN 1024
#define RW_PATH_LEN 1024
#define RW_NAME_MAX 256
#define RW_DNS_LEN 512

/* watched map values */
#define RW_WATCH 1
#define RW_EXCLUDE 2

/* How deep the cgroup ancestry is searched for a watched cgroup. */
#define RW_CGROUP_DEPTH 16
/* How many dentries (mount crossings included) a path walk follows. */
#define RW_PATH_DEPTH 40
/* 8 x 64 bits: enough for every x86_64 syscall number. */
#define RW_SYSCALL_WORDS 8

/* One ring buffer shared by all CPUs (a power of two). Events are written without waking the
 * sensor, which drains the ring on its poll timeout; only a ring filling up past
 * RW_WAKEUP_BYTES wakes it early. A wake-up per event cost more than the event itself. */
#define RW_RINGBUF_BYTES 8388608
#define RW_WAKEUP_BYTES 262144

/* open_event.path_flags */
#define RW_PATH_COMPLETE 1  /* the walk reached the task's root: the path is absolute */
#define RW_PATH_TRUNCATED 2 /* the buffer filled up before the root was reached */

/* stats array indices */
#define RW_STAT_EMITTED 0
#define RW_STAT_OUTPUT_FAILED 1
#define RW_STAT_STATE_FULL 2
#define RW_STAT_FOLDED_OPEN 3
#define RW_STAT_FOLDED_CONNECT 4
#define RW_STAT_FOLDED_ACCEPT 5
#define RW_STAT_COUNT 8

#endif

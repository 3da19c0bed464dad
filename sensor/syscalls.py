"""Turn the in-kernel per-cgroup syscall bitmap into syscall names."""

from __future__ import annotations

from runward.core.syscall_table import X86_64_SYSCALLS


def syscall_name(number: int) -> str:
    return X86_64_SYSCALLS.get(number, f"syscall_{number}")


def bitmap_numbers(bitmap: bytes) -> list[int]:
    """Numbers of the set bits; the kernel stores little-endian u64 words, bit n = syscall n."""
    value = int.from_bytes(bitmap, "little")
    numbers = []
    while value:
        low = value & -value
        numbers.append(low.bit_length() - 1)
        value ^= low
    return numbers


def bitmap_names(bitmap: bytes) -> list[str]:
    return sorted(syscall_name(n) for n in bitmap_numbers(bitmap))

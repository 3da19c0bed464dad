"""The sensor's metrics go through prometheus_client, BPF program run time included."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from sensor.metrics import Metrics, bpf_program_stats

# /proc/<pid>/fdinfo/<fd> of a BPF program fd (Linux 6.x), one of a perf event fd, one of a map fd.
PROG_FDINFO = """pos:\t0
flags:\t02000002
mnt_id:\t15
ino:\t1057
prog_type:\t26
prog_jited:\t1
prog_tag:\t0e1dff18a4f8b8a3
memlock:\t4096
prog_id:\t55
run_time_ns:\t1500000000
run_cnt:\t7
recursion_misses:\t0
verified_insns:\t20
"""
MAP_FDINFO = """pos:\t0
flags:\t02000002
mnt_id:\t15
ino:\t1057
map_type:\t1
key_size:\t8
value_size:\t8
max_entries:\t4096
map_flags:\t0x0
map_extra:\t0x0
memlock:\t69632
map_id:\t12
frozen:\t0
"""


def test_program_run_time_from_fdinfo(tmp_path: Path) -> None:
    (tmp_path / "3").write_text(PROG_FDINFO)
    (tmp_path / "4").write_text(PROG_FDINFO)  # the same program held twice counts once
    (tmp_path / "5").write_text(MAP_FDINFO)
    (tmp_path / "6").write_text("pos:\t0\nflags:\t02\n")
    programs = bpf_program_stats(tmp_path)
    assert programs == [{"prog_id": "55", "prog_tag": "0e1dff18a4f8b8a3", "run_time_ns": "1500000000", "run_cnt": "7"}]

    metrics = Metrics()
    metrics.record_programs(programs)
    metrics.inc("runward_sensor_perf_lost_samples_total", 3)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.prometheus())
        for s in family.samples
    }
    labels = (("program", "id:55"),)  # no name without the live fd
    assert samples[("runward_sensor_program_run_seconds_total", labels)] == 1.5
    assert samples[("runward_sensor_program_runs_total", labels)] == 7
    assert samples[("runward_sensor_perf_lost_samples_total", ())] == 3


def test_missing_fdinfo_is_no_programs(tmp_path: Path) -> None:
    assert bpf_program_stats(tmp_path / "absent") == []


def test_program_stats_finds_the_programs_once_and_follows_their_counts(tmp_path: Path) -> None:
    from sensor.metrics import ProgramStats

    (tmp_path / "5").write_text(MAP_FDINFO)
    reader = ProgramStats(tmp_path)
    assert reader.read() == []  # nothing loaded yet: looked for again next time
    (tmp_path / "3").write_text(PROG_FDINFO)
    assert reader.read() == bpf_program_stats(tmp_path)
    (tmp_path / "3").write_text(PROG_FDINFO.replace("run_cnt:\t7", "run_cnt:\t9"))
    (tmp_path / "8").write_text(PROG_FDINFO.replace("prog_id:\t55", "prog_id:\t56"))  # opened later: not read
    assert [p["run_cnt"] for p in reader.read()] == ["9"]

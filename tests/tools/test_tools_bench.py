"""tools.bench: closed-loop measurement, percentiles, ratios to same-run baselines, CPU per
operation per process and the report."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time

import pytest

from tools.bench import cpu_table, log_levels, scenario_modules, table, with_ratios
from tools.bench_core import Result, measure
from tools.bench_cpu import CpuMeter, children, cpu_seconds, ms_per_operation, one, with_children
from tools.bench_levers import cpu_us_per_op


async def test_measure_counts_operations_and_errors() -> None:
    """Every completed operation after warm-up is counted; failures are counted apart."""
    calls = 0

    async def sometimes_fails(worker: int) -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.001)
        if calls % 5 == 0:
            raise RuntimeError("injected")

    result = await measure("t", sometimes_fails, concurrency=4, seconds=0.3, warmup=0.05)
    assert result.operations > 0
    assert result.errors > 0
    assert result.p50_ms <= result.p99_ms
    assert result.throughput > 0


def test_ratios_are_relative_to_the_baselines() -> None:
    """A scenario's ratios divide its throughput by each baseline's."""
    results = with_ratios([
        Result("baseline/grpc-echo", 1, 100, 0, 1.0, 1000.0, 1.0, 2.0),
        Result("baseline/asyncpg-update", 1, 100, 0, 1.0, 500.0, 1.0, 2.0),
        Result("x/y", 1, 100, 0, 1.0, 250.0, 1.0, 2.0),
    ])
    scenario = results[2]
    assert scenario.vs_grpc_echo == 0.25
    assert scenario.vs_asyncpg_update == 0.5
    assert "x/y" in table(results)


def _burn(seconds: float) -> None:
    deadline = time.process_time() + seconds
    while time.process_time() < deadline:
        pass


async def test_measure_reports_cpu_per_operation_of_each_process() -> None:
    """The CPU a process spends in the timed window is divided by the operations counted."""
    meter = CpuMeter()
    meter.add("bench", one(os.getpid()))
    meter.add("parent", one(os.getppid()))

    async def busy(_: int) -> None:
        _burn(0.005)
        await asyncio.sleep(0)

    result = await measure("t", busy, concurrency=2, seconds=0.4, warmup=0.05, cpu=meter)
    assert set(result.cpu_ms_per_op) == {"bench", "parent"}
    # 5 ms of CPU per operation, read at the kernel's tick resolution (10 ms) over the window.
    assert 2.5 < result.cpu_ms_per_op["bench"] < 20
    assert result.cpu_ms_per_op_total >= result.cpu_ms_per_op["bench"]


def test_cpu_of_a_child_is_read_even_when_its_name_has_spaces_and_parentheses() -> None:
    """/proc/<pid>/stat is split after the command name, whatever the name holds; a group with
    children counts the live children."""
    child = subprocess.Popen([sys.executable, "-c", (
        "import time\n"
        "open('/proc/self/comm', 'w').write('x) (y z')\n"
        "end = time.process_time() + 0.3\n"
        "while time.process_time() < end: pass\n"
        "print('done', flush=True)\n"
        "time.sleep(30)\n")], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"done\n"
        assert child.pid in children(os.getpid())
        assert cpu_seconds(child.pid) >= 0.25
        group = CpuMeter({"self": with_children(os.getpid())}).read()["self"]
        assert group >= cpu_seconds(os.getpid()) + 0.25
    finally:
        child.kill()
        child.wait()
    assert cpu_seconds(child.pid) == 0.0  # gone: nothing to read


def test_no_operation_gives_no_cpu_figure() -> None:
    """A window without a completed operation reports no CPU per operation (not a division
    by zero, not an infinite figure); a group missing from a reading is left out."""
    assert ms_per_operation({"a": 1.0}, {"a": 2.0}, 0) == {}
    assert ms_per_operation({"a": 1.0, "b": 1.0}, {"a": 1.5}, 100) == {"a": 5.0}


def test_tables_show_log_level_ratios_and_cpu_by_process() -> None:
    """Both tables carry every scenario once per log level, with CPU ms/op per process."""
    results = with_ratios([
        Result("baseline/grpc-echo", 1, 100, 0, 1.0, 1000.0, 1.0, 2.0, log_level="",
               cpu_ms_per_op={"bench": 0.2, "echo": 0.25}),
        Result("x/y", 1, 100, 0, 1.0, 250.0, 1.0, 2.0, log_level="info",
               cpu_ms_per_op={"bench": 0.3, "membership": 1.25}),
        Result("x/y", 1, 100, 0, 1.0, 300.0, 1.0, 2.0, log_level="warning",
               cpu_ms_per_op={"bench": 0.3, "membership": 1.0}),
    ])
    main, by_process = table(results), cpu_table(results)
    assert [line.split()[:2] for line in main.splitlines()[2:]] == [
        ["baseline/grpc-echo", "1"], ["x/y", "info"], ["x/y", "warning"]]
    assert "1.550" in main.splitlines()[3]  # total CPU ms/op of the info row
    assert by_process.splitlines()[0].split()[-3:] == ["bench", "echo", "membership"]
    assert by_process.splitlines()[3].split()[-3:] == ["0.300", "0.000", "1.250"]
    assert results[2].vs_grpc_echo == 0.3


def test_log_levels_option_accepts_info_and_warning_only() -> None:
    """--log-levels names the levels to run at; anything else is refused naming the value."""
    assert log_levels("info,warning") == ["info", "warning"]
    assert log_levels(" warning ") == ["warning"]
    with pytest.raises(argparse.ArgumentTypeError, match="'debug'"):
        log_levels("debug")
    with pytest.raises(argparse.ArgumentTypeError):
        log_levels(",")


def test_only_names_scenario_modules_and_refuses_unknown_ones() -> None:
    """--only runs the modules it names (comma-separated) and refuses a name that is none."""
    modules = scenario_modules("segments,dashboards")
    assert [m.__name__.rsplit(".", 1)[1] for m in modules] == ["dashboards", "segments"]
    with pytest.raises(SystemExit, match="membrship"):
        scenario_modules("membrship")


async def test_lever_cost_is_cpu_per_operation_of_this_process() -> None:
    """tools.bench_levers divides this process's CPU time by the timed operations (warm-up
    calls excluded): a step that burns 0.5 ms of CPU costs about 500 µs."""
    async def burn() -> None:
        _burn(0.0005)

    cost = await cpu_us_per_op(burn, 320)
    assert 400 < cost < 2000

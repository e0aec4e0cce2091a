"""Executed arm64 instructions per inference, int8 vs float32, under QEMU (no ARM hardware).

An estimate of how much faster the int8 TFLite files are than the float32 ones on ARM
phones, made on an x86 machine: the files are exported here with
``keras_mobilenets.export.to_tflite`` (int8 calibrated on random images after the
batch-norm statistics are re-estimated on them, as in benchmarks/int8_speed.py), then
run by an arm64 Python with LiteRT (XNNPACK, 1 thread) under ``qemu-aarch64``, which
emulates a given ARM CPU model. A TCG plugin (benchmarks/arm_insn_plugin.c) counts the
guest instructions executed; the guest runner (benchmarks/arm_guest_runner.py) marks the
start and end of ``--runs`` invocations (after load, tensor allocation and ``--warmup``
invocations), so the count per inference excludes everything else. ``--method subtract``
instead runs each file twice, with ``--runs`` and with 0 invocations, and divides the
difference of the whole-process counts.

Instruction counts are a proxy for time: they ignore memory and cache behaviour and the
different cost of instructions (see docs/arm_estimate.md for how far it can be trusted).

Needs the arm64 root, the plugin and QEMU that benchmarks/arm_setup.sh installs.

Usage:
    python benchmarks/arm_instruction_counts.py
    python benchmarks/arm_instruction_counts.py --models mobilenet_v3_small_1.0 \\
        --cpus cortex-a53,cortex-a76 --runs 3 --json counts.json
"""

import argparse
import bisect
import json
import os
import pathlib
import platform
import re
import shutil
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
GUEST_RUNNER = HERE / "arm_guest_runner.py"
DEFAULT_ROOT = "/opt/arm64root"
DEFAULT_PLUGIN = "/opt/arm-qemu/arm_insn_plugin.so"
DEFAULT_MODELS = "mobilenet_v3_small_1.0,mobilenet_v2_0.35,mobilenet_v1_0.25"
#: Marker labels written by arm_guest_runner.py (LABEL_BEFORE_RUNS, LABEL_AFTER_RUNS).
LABEL_BEFORE_RUNS, LABEL_AFTER_RUNS = 1, 2

#: CPU models: QEMU's -cpu name, and the /proc/cpuinfo the guest reads. QEMU 7.2's
#: linux-user emulation shows the guest the host's (x86) /proc/cpuinfo, on which
#: XNNPACK's CPU detection (the cpuinfo library) crashes; the arm64 root gets this file
#: instead (qemu -L serves files from the root first). Its MIDR fields make XNNPACK pick
#: the kernels it tunes for that core; the ISA features (dotprod) come from QEMU's
#: emulated HWCAP. "cortex-a55" is QEMU's cortex-a76 ISA (ARMv8.2 + dotprod; QEMU 7.2
#: has no A55 model) with an A55 MIDR, so XNNPACK picks its in-order A55 kernels.
CPUS = {
    "cortex-a53": {
        "qemu_cpu": "cortex-a53",
        "features": "fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid",
        "variant": "0x0", "part": "0xd03", "revision": "4",
    },
    "cortex-a55": {
        "qemu_cpu": "cortex-a76",
        "features": ("fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp "
                     "cpuid asimdrdm lrcpc dcpop asimddp"),
        "variant": "0x1", "part": "0xd05", "revision": "0",
    },
    "cortex-a76": {
        "qemu_cpu": "cortex-a76",
        "features": ("fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp "
                     "cpuid asimdrdm lrcpc dcpop asimddp"),
        "variant": "0x4", "part": "0xd0b", "revision": "1",
    },
    # Not ARM: the host's own x86-64 Python and LiteRT under qemu-x86_64 (TCG's "max" CPU:
    # AVX2 and FMA3, no AVX-512), to compare instruction counts with times measured here.
    "x86-64": {"qemu_cpu": "max"},
}


def parse_args(argv=None):
    """Parses the command line.

    Args:
        argv: Arguments (without the program name); None reads ``sys.argv``.

    Returns:
        argparse.Namespace: with ``models`` and ``cpus`` split into lists.

    Raises:
        SystemExit: On an unknown CPU model, a method other than "markers" or
            "subtract", or ``--runs`` < 1.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=DEFAULT_MODELS,
                        help="comma-separated zoo variant names (keras-mobilenets models)")
    parser.add_argument("--cpus", default="cortex-a53,cortex-a76",
                        help=f"comma-separated CPU models, of {', '.join(CPUS)}")
    parser.add_argument("--size", type=int, default=224, help="input size")
    parser.add_argument("--runs", type=int, default=3, help="counted invocations per file")
    parser.add_argument("--warmup", type=int, default=1, help="invocations before counting")
    parser.add_argument("--calibration", type=int, default=32, help="calibration images")
    parser.add_argument("--method", choices=("markers", "subtract"), default="markers",
                        help="markers: count between two markers in one process; subtract: "
                             "(count with --runs invocations - count with 0) / --runs")
    parser.add_argument("--regions", action="store_true",
                        help="also attribute the counted instructions to functions (the "
                             "libraries' symbol tables, read with readelf; markers method)")
    parser.add_argument("--root", default=DEFAULT_ROOT, help="the arm64 root (arm_setup.sh)")
    parser.add_argument("--plugin", default=DEFAULT_PLUGIN, help="the compiled TCG plugin")
    parser.add_argument("--qemu", default="qemu-aarch64", help="QEMU's linux-user binary")
    parser.add_argument("--work-dir", default="/tmp/arm_instruction_counts",
                        help="where the .tflite files and plugin outputs go")
    parser.add_argument("--reuse-files", action="store_true",
                        help="use the .tflite files already in --work-dir")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.cpus = [c.strip() for c in args.cpus.split(",") if c.strip()]
    unknown = [c for c in args.cpus if c not in CPUS]
    if unknown:
        parser.error(f"unknown CPU model(s) {unknown}; known: {', '.join(CPUS)}")
    if args.runs < 1:
        parser.error(f"--runs must be >= 1, got {args.runs}")
    if args.regions and args.method != "markers":
        parser.error("--regions needs --method markers")
    return args


def parse_plugin_output(text):
    """Reads what benchmarks/arm_insn_plugin.c wrote.

    Args:
        text: The plugin's output: ``marker <label> <count>``, ``tb <label> <hex address>
            <count>`` and ``total <count>`` lines (other lines are ignored).

    Returns:
        dict: ``markers`` ({label: instructions executed when the marker was hit}),
        ``total`` (instructions at exit, or None if the process did not exit normally) and
        ``tbs`` ({label: {address: instructions since the previous marker}}).

    Example:
        >>> parse_plugin_output("marker 1 10\\ntb 2 4000 5\\nmarker 2 15\\ntotal 20\\n")
        {'markers': {1: 10, 2: 15}, 'total': 20, 'tbs': {2: {16384: 5}}}
    """
    result = {"markers": {}, "total": None, "tbs": {}}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[0] == "marker":
            result["markers"][int(fields[1])] = int(fields[2])
        elif len(fields) == 4 and fields[0] == "tb":
            label_tbs = result["tbs"].setdefault(int(fields[1]), {})
            address = int(fields[2], 16)
            label_tbs[address] = label_tbs.get(address, 0) + int(fields[3])
        elif len(fields) == 2 and fields[0] == "total":
            result["total"] = int(fields[1])
    return result


def function_symbols(path):
    """Sorted (address, size, name) of the functions in an ELF file's symbol tables.

    Reads ``readelf -Ws --wide`` (binutils); addresses are relative to the file's load base
    (shared libraries are linked at 0). Returns [] where readelf is missing or fails.

    Args:
        path: The ELF file.

    Returns:
        list: (address, size, name) tuples sorted by address.
    """
    try:
        text = subprocess.run(["readelf", "-Ws", "--wide", path], capture_output=True,
                              text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    symbols = set()
    for line in text.splitlines():
        fields = line.split()
        # Num: Value Size Type Bind Vis Ndx Name
        if len(fields) >= 8 and fields[3] == "FUNC" and fields[6] != "UND":
            size = int(fields[2], 16) if fields[2].startswith("0x") else int(fields[2])
            symbols.add((int(fields[1], 16), size, fields[7].split("@")[0]))
    return sorted(symbols)


def instructions_by_function(tbs, mappings, symbols_of=function_symbols):
    """Sums per-block instruction counts by the function (or file) whose code holds each block.

    Args:
        tbs: {block start address: instructions}.
        mappings: The guest runner's [start, end, file offset, permissions, path] list.
        symbols_of: Returns a file's sorted (address, size, name) functions.

    Returns:
        dict: {"file:function": instructions}, sorted by decreasing count; "file:?" for
        addresses in a file but in no known function, "?" outside every file mapping.

    Example:
        >>> maps = [[0x1000, 0x2000, 0, "r-xp", "/lib/a.so"]]
        >>> instructions_by_function({0x1010: 5, 0x1800: 2, 0x9000: 1}, maps,
        ...                          lambda path: [(0x10, 0x20, "f")])
        {'a.so:f': 5, 'a.so:?': 2, '?': 1}
    """
    # A file's load base: the start of its mapping at file offset 0.
    bases = {}
    for start, _, offset, _, path in mappings:
        if offset == 0:
            bases[path] = min(start, bases.get(path, start))
    symbols, totals = {}, {}
    for address, count in tbs.items():
        name = "?"
        for start, end, _, permissions, path in mappings:
            if start <= address < end and "x" in permissions:
                if path not in symbols:
                    symbols[path] = symbols_of(path)
                functions = symbols[path]
                relative = address - bases.get(path, start)
                index = bisect.bisect_right(functions, (relative, float("inf"))) - 1
                function = "?"
                if index >= 0:
                    value, size, symbol = functions[index]
                    if value <= relative < value + max(size, 1):
                        function = symbol
                name = f"{os.path.basename(path)}:{function}"
                break
        totals[name] = totals.get(name, 0) + count
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def cpuinfo_text(cpu, processors=None):
    """The /proc/cpuinfo an arm64 kernel would show for ``cpu`` (one block per processor).

    Args:
        cpu: A key of ``CPUS``.
        processors: Number of processor blocks; default ``os.cpu_count()`` (the guest sees
            the host's /sys/devices/system/cpu, so the counts should agree).

    Returns:
        str: the file's text.
    """
    spec = CPUS[cpu]
    blocks = []
    for index in range(processors or os.cpu_count() or 1):
        blocks.append(
            f"processor\t: {index}\nBogoMIPS\t: 50.00\nFeatures\t: {spec['features']}\n"
            f"CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: {spec['variant']}\n"
            f"CPU part\t: {spec['part']}\nCPU revision\t: {spec['revision']}\n")
    return "\n".join(blocks) + "\n"


def versions(args):
    """QEMU, the arm64 root's Debian and LiteRT versions, and the host CPU."""
    root = pathlib.Path(args.root)
    qemu = subprocess.run([args.qemu, "--version"], capture_output=True, text=True,
                          check=True).stdout.splitlines()[0]
    litert = sorted(p.name.removesuffix(".dist-info").split("-")[1]
                    for p in (root / "opt/site").glob("ai_edge_litert-*.dist-info"))
    host_cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            host_cpu = re.search(r"model name\s*:\s*(.*)", f.read()).group(1)
    except (OSError, AttributeError):
        pass
    return {
        "qemu": qemu,
        "guest_debian": (root / "etc/debian_version").read_text().strip(),
        "guest_litert": litert[0] if litert else None,
        "host_cpu": f"{host_cpu} ({os.cpu_count()} CPUs)",
        "host_python": platform.python_version(),
    }


def check_setup(args):
    """Raises SystemExit with what is missing if arm_setup.sh has not been run."""
    missing = []
    python = pathlib.Path(args.root) / "usr/bin/python3"
    if not python.exists():
        missing.append(f"the arm64 root's Python ({python})")
    if not (pathlib.Path(args.root) / "opt/site/ai_edge_litert").is_dir():
        missing.append(f"LiteRT in the arm64 root ({args.root}/opt/site)")
    if not pathlib.Path(args.plugin).exists():
        missing.append(f"the plugin ({args.plugin})")
    try:
        subprocess.run([args.qemu, "--version"], capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        missing.append(f"QEMU ({args.qemu})")
    if missing:
        sys.exit("Not set up: missing " + "; ".join(missing) +
                 ". Run benchmarks/arm_setup.sh (as root) first.")


def export_files(args):
    """Exports each model's float32 and int8 files into the work folder.

    Returns:
        dict: {model name: {"float32": path, "int8": path}}.
    """
    files = {name: {q: pathlib.Path(args.work_dir) / f"{name}_{args.size}_{q}.tflite"
                    for q in ("float32", "int8")} for name in args.models}
    todo = [name for name in args.models
            if not (args.reuse_files and all(p.exists() for p in files[name].values()))]
    if not todo:
        return files
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np

    from keras_mobilenets import export, zoo
    from keras_mobilenets.training import reestimate_batch_norm

    shape = (args.size, args.size, 3)
    pixels = np.random.default_rng(0).uniform(0, 255, (args.calibration, *shape))
    pixels = pixels.astype("float32")
    for name in todo:
        model = zoo.get(name).build(input_shape=shape)
        # Raw pixels where the model rescales inside (V3), [-1, 1] for the others.
        rescales = any(layer.name == "rescaling" for layer in model.layers)
        images = pixels if rescales else pixels / 127.5 - 1.0
        reestimate_batch_norm(model, images)
        export.to_tflite(model, str(files[name]["float32"]))
        export.to_tflite(model, str(files[name]["int8"]), quantization="int8",
                         representative_data=images)
        keras.backend.clear_session()
    return files


def run_guest(args, cpu, model_file, runs, label):
    """Runs the guest runner on one file under QEMU with the counting plugin.

    Returns:
        tuple: (parsed plugin output, the runner's JSON report, wall seconds).
    """
    out = pathlib.Path(args.work_dir) / f"{label}.insns"
    out.unlink(missing_ok=True)
    root = pathlib.Path(args.root)
    plugin = f"{args.plugin},out={out},regions={'on' if args.regions else 'off'}"
    runner = [str(GUEST_RUNNER), str(model_file), "--runs", str(runs),
              "--warmup", str(args.warmup), "--threads", "1"]
    env = {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    if cpu == "x86-64":
        # This Python (its LiteRT) under qemu-x86_64, next to qemu-aarch64.
        qemu = str(pathlib.Path(shutil.which(args.qemu) or args.qemu).with_name("qemu-x86_64"))
        command = [qemu, "-cpu", CPUS[cpu]["qemu_cpu"], "-plugin", plugin, sys.executable,
                   *runner]
    else:
        command = [args.qemu, "-L", str(root), "-cpu", CPUS[cpu]["qemu_cpu"], "-plugin",
                   plugin, str(root / "usr/bin/python3"), *runner]
        env["PYTHONPATH"] = str(root / "opt/site")
    start = time.perf_counter()
    process = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n"
                           f"{process.stdout[-2000:]}\n{process.stderr[-2000:]}")
    report = json.loads(next(line for line in process.stdout.splitlines()
                             if line.startswith("{")))
    return parse_plugin_output(out.read_text()), report, seconds


def count_file(args, cpu, model_file, label):
    """Instructions per inference of one file on one CPU model (and what else was seen)."""
    counts, report, seconds = run_guest(args, cpu, model_file, args.runs, label)
    result = {"hwcaps": report["hwcaps"], "wall_s": round(seconds, 1),
              "setup_s": round(report["setup_s"], 2),
              "emulated_s_per_inference": round(report["runs_s"] / args.runs, 3)}
    if args.method == "markers":
        markers = counts["markers"]
        result["insns_per_inference"] = (
            markers[LABEL_AFTER_RUNS] - markers[LABEL_BEFORE_RUNS]) / args.runs
        if args.regions:
            functions = instructions_by_function(counts["tbs"].get(LABEL_AFTER_RUNS, {}),
                                                 report["mappings"])
            total = sum(functions.values())
            # The functions that hold 99% of the instructions (at most 40), as fractions.
            top, covered = {}, 0
            for function, count in functions.items():
                if covered >= 0.99 * total or len(top) == 40:
                    break
                top[function] = round(count / total, 4)
                covered += count
            result["top_functions"] = top
    else:
        zero, _, zero_seconds = run_guest(args, cpu, model_file, 0, label + "_0")
        result["insns_per_inference"] = (counts["total"] - zero["total"]) / args.runs
        result["wall_s"] = round(seconds + zero_seconds, 1)
    return result


def table(rows):
    """The printed table: one line per (model, CPU model)."""
    header = (f"{'model':24s} {'cpu':11s} {'dotprod':>7s} {'f32 Minsn':>9s} "
              f"{'int8 Minsn':>10s} {'int8/f32':>8s} {'qemu s/inf f32,int8':>20s}")
    lines = [header, "-" * len(header)]
    for row in rows:
        f32, i8 = row["float32"], row["int8"]
        lines.append(
            f"{row['model']:24s} {row['cpu']:11s} "
            f"{str(i8['hwcaps']['asimddp']) if row['cpu'] != 'x86-64' else '-':>7s} "
            f"{f32['insns_per_inference'] / 1e6:9.2f} {i8['insns_per_inference'] / 1e6:10.2f} "
            f"{i8['insns_per_inference'] / f32['insns_per_inference']:8.2f} "
            f"{f32['emulated_s_per_inference']:9.2f},{i8['emulated_s_per_inference']:.2f}")
    return "\n".join(lines)


def kernel_summary(rows, top=3):
    """Lines naming, per file, the share of dotprod kernels and the busiest functions."""
    lines = []
    for row in rows:
        for quantization in ("float32", "int8"):
            functions = row[quantization].get("top_functions")
            if not functions:
                continue
            busiest = ", ".join(f"{name.split(':', 1)[-1]} {share:.0%}"
                                for name, share in list(functions.items())[:top])
            if row["cpu"] != "x86-64":
                dot = sum(share for name, share in functions.items() if "neondot" in name)
                busiest = f"{dot:.0%} in *neondot* functions; {busiest}"
            lines.append(f"{row['model']} {row['cpu']} {quantization}: {busiest}")
    return "\n".join(lines)


def main(argv=None):
    """Exports the files, counts each on each CPU model and prints the table.

    Args:
        argv: Command-line arguments; None reads ``sys.argv``.

    Returns:
        dict: the results (also written to ``--json``).
    """
    args = parse_args(argv)
    check_setup(args)
    pathlib.Path(args.work_dir).mkdir(parents=True, exist_ok=True)
    info = versions(args)
    print(f"host: {info['host_cpu']}; {info['qemu']}; guest: Debian {info['guest_debian']}, "
          f"ai-edge-litert {info['guest_litert']}, XNNPACK, 1 thread; {args.size}x{args.size}; "
          f"{args.runs} counted invocations after {args.warmup} warm-up ({args.method})",
          flush=True)
    files = export_files(args)
    cpuinfo = pathlib.Path(args.root) / "proc/cpuinfo"
    cpuinfo.parent.mkdir(exist_ok=True)
    rows = []
    for cpu in args.cpus:
        if cpu != "x86-64":
            cpuinfo.write_text(cpuinfo_text(cpu))
        for name in args.models:
            row = {"model": name, "cpu": cpu}
            for quantization, path in files[name].items():
                row[quantization] = count_file(args, cpu, path, f"{name}_{cpu}_{quantization}")
            rows.append(row)
            print(table([row]).splitlines()[-1], flush=True)
    print()
    print(table(rows))
    if args.regions:
        print()
        print(kernel_summary(rows))
    results = {"versions": info, "size": args.size, "runs": args.runs, "warmup": args.warmup,
               "method": args.method, "threads": 1, "rows": rows}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()

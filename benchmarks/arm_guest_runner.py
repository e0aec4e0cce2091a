"""Guest side of benchmarks/arm_instruction_counts.py: runs a TFLite file under qemu-aarch64.

Runs with the arm64 root's Python and only numpy + ai-edge-litert (no keras_mobilenets).
Loads the file with LiteRT's interpreter (XNNPACK, ``--threads``), allocates tensors, runs
``--warmup`` invocations, then ``--runs`` invocations between two markers that
benchmarks/arm_insn_plugin.c turns into instruction counts (a failing
``lseek(-1, MAGIC + label)``). Prints one JSON line: the guest's HWCAP bits, its file
mappings (for attributing instructions to functions) and the wall times.

Usage (under qemu-aarch64 with the plugin; see benchmarks/arm_instruction_counts.py):
    python3 arm_guest_runner.py model.tflite --runs 3 --warmup 1
"""

import argparse
import ctypes
import json
import os
import time

#: Must match MARKER_MAGIC in arm_insn_plugin.c.
MARKER_MAGIC = 0x4B4D4E000000
#: Marker labels: after load + allocation + warmup, after the timed invocations.
LABEL_BEFORE_RUNS, LABEL_AFTER_RUNS = 1, 2
#: AT_HWCAP / AT_HWCAP2 (linux/auxvec.h) and the arm64 bits read from them
#: (arch/arm64/include/uapi/asm/hwcap.h).
AT_HWCAP, AT_HWCAP2 = 16, 26
HWCAP_BITS = {"fp": 0, "asimd": 1, "asimdhp": 10, "asimddp": 20, "sve": 22}
HWCAP2_BITS = {"i8mm": 13, "bf16": 14}


def marker(label):
    """Tells the counting plugin to write the instruction count (a no-op lseek that fails)."""
    try:
        os.lseek(-1, MARKER_MAGIC + label, os.SEEK_SET)
    except OSError:
        pass


def hwcaps():
    """The arm64 features the (emulated) kernel reports to this process, by name."""
    libc = ctypes.CDLL(None)
    libc.getauxval.restype = ctypes.c_ulong
    libc.getauxval.argtypes = [ctypes.c_ulong]
    hwcap, hwcap2 = libc.getauxval(AT_HWCAP), libc.getauxval(AT_HWCAP2)
    features = {name: bool(hwcap >> bit & 1) for name, bit in HWCAP_BITS.items()}
    features.update({name: bool(hwcap2 >> bit & 1) for name, bit in HWCAP2_BITS.items()})
    return features


def file_mappings():
    """[start, end, file offset, permissions, path] of the file mappings of this process."""
    mappings = []
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 6 and fields[5].startswith("/"):
                start, end = (int(x, 16) for x in fields[0].split("-"))
                mappings.append([start, end, int(fields[2], 16), fields[1], fields[5]])
    return mappings


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="the .tflite file")
    parser.add_argument("--runs", type=int, default=3, help="counted invocations")
    parser.add_argument("--warmup", type=int, default=1, help="invocations before counting")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    start = time.perf_counter()
    interpreter = Interpreter(model_path=args.model, num_threads=args.threads)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    rng = np.random.default_rng(0)
    if np.issubdtype(detail["dtype"], np.integer):
        info = np.iinfo(detail["dtype"])
        data = rng.integers(info.min, info.max, detail["shape"], endpoint=True)
    else:
        data = rng.uniform(-1.0, 1.0, detail["shape"])
    interpreter.set_tensor(detail["index"], data.astype(detail["dtype"]))
    for _ in range(args.warmup):
        interpreter.invoke()
    setup_s = time.perf_counter() - start

    marker(LABEL_BEFORE_RUNS)
    start = time.perf_counter()
    for _ in range(args.runs):
        interpreter.invoke()
    runs_s = time.perf_counter() - start
    marker(LABEL_AFTER_RUNS)

    print(json.dumps({
        "hwcaps": hwcaps(),
        "mappings": file_mappings(),
        "setup_s": setup_s,
        "runs_s": runs_s,
        "runs": args.runs,
        "input_dtype": str(np.dtype(detail["dtype"])),
    }), flush=True)


if __name__ == "__main__":
    main()

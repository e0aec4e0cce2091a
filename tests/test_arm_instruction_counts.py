"""benchmarks/arm_instruction_counts.py: its argument parsing and the parsing of the counting
plugin's output (no QEMU needed: the script's QEMU runs are not part of the test suite)."""

import pytest

from tests import helpers

SCRIPT = helpers.REPO / "benchmarks" / "arm_instruction_counts.py"


def test_arguments_and_plugin_output_parsing():
    script = helpers.load_script(SCRIPT)

    args = script.parse_args([])
    assert args.models == script.DEFAULT_MODELS.split(",")
    assert args.cpus == ["cortex-a53", "cortex-a76"] and args.method == "markers"
    args = script.parse_args(["--models", "mobilenet_v2_0.35, mobilenet_v1_0.25",
                              "--cpus", "cortex-a55", "--runs", "2"])
    assert args.models == ["mobilenet_v2_0.35", "mobilenet_v1_0.25"]
    assert args.cpus == ["cortex-a55"] and args.runs == 2
    for bad in (["--cpus", "cortex-x1"], ["--runs", "0"], ["--method", "subtract", "--regions"]):
        with pytest.raises(SystemExit):
            script.parse_args(bad)

    # Lines as arm_insn_plugin.c writes them (QEMU's own log lines are ignored); a start
    # address seen twice (a retranslated block) is summed.
    text = ("marker 1 1000\ntb 2 400a10 30\ntb 2 400a10 5\ntb 2 7f0000 60\nmarker 2 1100\n"
            "some qemu log line\ntotal 1500\n")
    parsed = script.parse_plugin_output(text)
    assert parsed == {"markers": {1: 1000, 2: 1100}, "total": 1500,
                      "tbs": {2: {0x400A10: 35, 0x7F0000: 60}}}
    assert script.parse_plugin_output("marker 1 5\n")["total"] is None  # killed before exit

    # Blocks are attributed to functions of the library mapped there (load base = start of
    # its offset-0 mapping) and the table prints the per-inference counts and their ratio.
    mappings = [[0x7F0000, 0x7F1000, 0, "r--p", "/lib/libx.so"],
                [0x7F1000, 0x7F8000, 0x1000, "r-xp", "/lib/libx.so"]]
    by_function = script.instructions_by_function(
        parsed["tbs"][2], mappings, lambda path: [(0x1000, 0x100, "xnn_gemm_neondot")])
    assert by_function == {"?": 95}  # outside every executable mapping
    by_function = script.instructions_by_function(
        {0x7F1010: 7}, mappings, lambda path: [(0x1000, 0x100, "xnn_gemm_neondot")])
    assert by_function == {"libx.so:xnn_gemm_neondot": 7}
    row = {"model": "m", "cpu": "cortex-a76"}
    for name, count in (("float32", 20e6), ("int8", 10e6)):
        row[name] = {"insns_per_inference": count, "hwcaps": {"asimddp": True},
                     "emulated_s_per_inference": 0.5,
                     "top_functions": {"libx.so:xnn_gemm_neondot": 0.6, "libx.so:f": 0.4}}
    line = script.table([row]).splitlines()[-1].split()
    assert line[:7] == ["m", "cortex-a76", "True", "20.00", "10.00", "0.50", "0.50,0.50"]
    assert "60% in *neondot* functions" in script.kernel_summary([row])
    assert "CPU part\t: 0xd0b" in script.cpuinfo_text("cortex-a76", processors=2)

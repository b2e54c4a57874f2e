"""Seeded mutation fuzz of the toolkit's .tflite load path: nothing may crash or hang, everything bad is exit 2.

Each case takes one of the zoo's models (models/*/*.tflite), mutates it and loads it the way eval, demo and
bench --in-process do (``toolkit.runtime.Runner``, then one invoke on zeros) in a forked child with a timeout
and an address-space cap. Mutations aim at the flatbuffer structure first (offsets, vtables, vector lengths,
tensor types, shapes, buffer indices, scales, zero points, quantized dimensions, opcode indices, versions, op
options), then anywhere (bit flips, 4-byte words set to extreme values, zeroed runs, truncation); a third of the
cases stack two or three mutations. Outcomes:

* ``refused``: exit 2 with one line (a clean refusal; split by who refused: the Python checks, the probe);
* ``loaded``: exit 0 (the mutation did not matter, e.g. it hit a name or a weight);
* ``runtime_error``: exit 1 with a one-line ToolkitError (the invoke failed cleanly);
* ``crash``: killed by a signal, or an exception that is not a ToolkitError ("internal error");
* ``hang``: still running after --timeout seconds.

``--static-only`` switches the probe off (TOOLKIT_MODEL_PROBE=off): what the Python checks alone stop.

    python scripts/fuzz_tflite.py --cases 300 --seed 0 [--static-only] [--json] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import signal
import struct
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from toolkit.paths import zoo_dir

MEMORY_CAP = 4 << 30  # address space per case: a tensor of 2**31 elements must fail, not eat the machine
OUTCOMES = ("refused", "loaded", "runtime_error", "crash", "hang")

# (slot, width, kind) of the scalar fields and (slot, element width, kind) of the vector fields per table
MODEL_VECTORS = {"operator_codes": 6, "subgraphs": 8, "buffers": 12, "signature_defs": 18}
TENSOR_SCALARS = [(6, 1, "byte"), (8, 4, "int")]  # type, buffer
TENSOR_VECTORS = [(4, 4, "int")]  # shape
QUANT_SCALARS = [(16, 4, "int")]  # quantized_dimension
QUANT_VECTORS = [(8, 4, "float"), (10, 8, "int64")]  # scale, zero_point
OP_SCALARS = [(4, 4, "int"), (10, 1, "byte")]  # opcode_index, builtin_options_type
OP_VECTORS = [(6, 4, "int"), (8, 4, "int")]  # inputs, outputs
CODE_SCALARS = [
    (4, 1, "byte"),
    (8, 4, "int"),
    (10, 4, "int"),
]  # deprecated_builtin_code, version, builtin_code
GRAPH_VECTORS = [(6, 4, "int"), (8, 4, "int")]  # subgraph inputs, outputs


def field_map(data: bytes) -> tuple[list[tuple[int, int, str]], list[tuple[int, int]]]:
    """Positions of the flatbuffer's structural fields [(offset, width, kind)] and the constant-data ranges."""
    from ai_edge_litert import schema_py_generated as schema

    buf = bytearray(data)
    fields: list[tuple[int, int, str]] = [(0, 4, "offset")]
    model = schema.Model.GetRootAs(buf, 0)

    def table(tab) -> None:
        fields.append((tab.Pos, 4, "offset"))  # soffset to the vtable
        vtable = tab.Pos - struct.unpack_from("<i", buf, tab.Pos)[0]
        fields.extend(
            (vtable + k, 2, "voffset") for k in range(0, struct.unpack_from("<H", buf, vtable)[0], 2)
        )

    def scalars(tab, specs) -> None:
        for slot, width, kind in specs:
            if off := tab.Offset(slot):
                fields.append((tab.Pos + off, width, kind))

    def vectors(tab, specs, limit: int = 16) -> None:
        for slot, width, kind in specs:
            if off := tab.Offset(slot):
                start = tab.Vector(off)
                fields.extend([(tab.Pos + off, 4, "offset"), (start - 4, 4, "length")])
                fields.extend((start + i * width, width, kind) for i in range(min(tab.VectorLen(off), limit)))

    table(model._tab)
    vectors(model._tab, [(slot, 4, "offset") for slot in MODEL_VECTORS.values()], limit=4)
    for c in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(c)
        table(code._tab)
        scalars(code._tab, CODE_SCALARS)
    ranges = []
    for b in range(model.BuffersLength()):
        buffer = model.Buffers(b)
        if off := buffer._tab.Offset(4):
            start = buffer._tab.Vector(off)
            ranges.append((start, start + buffer._tab.VectorLen(off)))
            fields.append((start - 4, 4, "length"))
    for s in range(model.SubgraphsLength()):
        graph = model.Subgraphs(s)
        table(graph._tab)
        vectors(graph._tab, GRAPH_VECTORS)
        for t in range(graph.TensorsLength()):
            tensor = graph.Tensors(t)
            table(tensor._tab)
            scalars(tensor._tab, TENSOR_SCALARS)
            vectors(tensor._tab, TENSOR_VECTORS)
            if (quant := tensor.Quantization()) is not None:
                table(quant._tab)
                scalars(quant._tab, QUANT_SCALARS)
                vectors(quant._tab, QUANT_VECTORS)
        for o in range(graph.OperatorsLength()):
            op = graph.Operators(o)
            table(op._tab)
            scalars(op._tab, OP_SCALARS)
            vectors(op._tab, OP_VECTORS)
            if off := op._tab.Offset(12):  # builtin_options: every field of the options table, as an int
                options = op._tab.Indirect(op._tab.Pos + off)
                vtable = options - struct.unpack_from("<i", buf, options)[0]
                for k in range(4, struct.unpack_from("<H", buf, vtable)[0], 2):
                    if rel := struct.unpack_from("<H", buf, vtable + k)[0]:
                        fields.append((options + rel, 1, "byte"))
    return [f for f in fields if 0 <= f[0] and f[0] + f[1] <= len(data)], ranges


def _value(rng: random.Random, kind: str, old: bytes) -> bytes:
    if kind == "float":
        value = struct.unpack("<f", old)[0]
        choice = rng.choice([0.0, -0.0, -1.0, math.nan, math.inf, -math.inf, 1e-45, 3e38, value * 1e10])
        return struct.pack("<f", choice if not abs(choice) > 3.4e38 else math.copysign(math.inf, choice))
    if kind == "int64":
        value = struct.unpack("<q", old)[0]
        choice = rng.choice([2**63 - 1, -(2**63), 0x40000000, -3221225472, 128, -129, 256, 32768, value + 1])
        return struct.pack("<q", choice)
    if kind == "byte":
        return bytes([rng.randrange(256)])
    if kind == "voffset":
        return struct.pack("<H", rng.choice([0, 2, 4, 0xFFFF, rng.randrange(1 << 16)]))
    value = struct.unpack("<i", old)[0]
    choice = rng.choice(
        [
            0,
            1,
            -1,
            2,
            2**31 - 1,
            -(2**31),
            0x40000000,
            value + 1,
            value - 1,
            value * 2,
            value + 4,
            rng.randrange(-1000, 1000),
            rng.randrange(-(2**31), 2**31),
        ]
    )
    return struct.pack("<i", ((choice + 2**31) % 2**32) - 2**31)


def mutate(rng: random.Random, data: bytes, fields, ranges) -> tuple[bytes, str]:
    """One mutant of ``data`` and a short description of what was done."""
    out = bytearray(data)

    def anywhere(width: int) -> int:
        for _ in range(20):  # mostly outside the weights: that is where the structure is
            pos = rng.randrange(0, len(out) - width) & ~(width - 1 if width in (2, 4, 8) else 0)
            if not any(a <= pos < b for a, b in ranges) or rng.random() < 0.3:
                return pos
        return pos

    what = rng.choices(["field", "bitflip", "word", "zeros", "truncate"], weights=[60, 10, 12, 10, 8])[0]
    fields = [f for f in fields if f[0] + f[1] <= len(out)]  # (an earlier mutation may have truncated it)
    if what == "field" and fields:
        pos, width, kind = rng.choice(fields)
        out[pos : pos + width] = _value(rng, kind, bytes(out[pos : pos + width]))
        return bytes(out), f"field {kind}@{pos}"
    if what == "bitflip":
        pos = anywhere(1)
        out[pos] ^= 1 << rng.randrange(8)
        return bytes(out), f"bitflip@{pos}"
    if what == "word":
        pos = anywhere(4)
        out[pos : pos + 4] = _value(rng, "int", bytes(out[pos : pos + 4]))
        return bytes(out), f"word@{pos}"
    if what == "zeros":
        pos, n = anywhere(4), rng.choice([4, 8, 16, 64])
        out[pos : pos + n] = bytes(len(out[pos : pos + n]))
        return bytes(out), f"zeros{n}@{pos}"
    cut = rng.randrange(8, len(out))
    return bytes(out[:cut]), f"truncate@{cut}"


def _child(path: Path, static_only: bool, report_fd: int) -> int:
    """In the forked child: load and run the mutant the way eval/demo/bench --in-process do; the exit code says
    how it went (a native crash never gets here)."""
    import numpy as np

    from toolkit.errors import ToolkitError, UsageError
    from toolkit.runtime import Runner

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
    if static_only:
        os.environ["TOOLKIT_MODEL_PROBE"] = "off"
    try:
        with Runner(path, num_threads=1) as runner:
            runner.run_raw({n: np.zeros(s.shape, s.dtype) for n, s in runner.inputs.items()})
        return 0
    except UsageError as exc:
        os.write(report_fd, str(exc).encode()[:2000])
        return 2
    except ToolkitError as exc:
        os.write(report_fd, str(exc).encode()[:2000])
        return 1
    except BaseException as exc:  # noqa: BLE001 - an "internal error" is a finding, whatever it is
        os.write(report_fd, f"{type(exc).__name__}: {exc}".encode()[:2000])
        return 70


def run_case(path: Path, static_only: bool, timeout: float) -> tuple[str, str]:
    """(outcome, detail) of loading ``path`` in a forked child."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the fuzzer
        os.close(read_fd)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        code = 70
        try:
            code = _child(path, static_only, write_fd)
        finally:
            os._exit(code)
    os.close(write_fd)
    deadline = time.monotonic() + timeout
    status = None
    while status is None:
        done, raw = os.waitpid(pid, os.WNOHANG)
        if done:
            status = raw
        elif time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read_fd)
            return "hang", f"still running after {timeout:g} s"
        else:
            time.sleep(0.005)
    with os.fdopen(read_fd, "rb") as pipe:
        detail = pipe.read().decode("utf-8", "replace")
    if os.WIFSIGNALED(status):
        return "crash", signal.Signals(os.WTERMSIG(status)).name
    code = os.WEXITSTATUS(status)
    outcome = {0: "loaded", 1: "runtime_error", 2: "refused"}.get(code, "crash")
    return outcome, detail if outcome != "crash" else f"exit {code}: {detail}"


def refused_by(detail: str) -> str:
    if "probe process" in detail:
        return "probe (crash or hang in the child)"
    if "cannot load" in detail:
        return "LiteRT load error"
    return "Python checks"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", nargs="*", type=Path, help=".tflite files (default: the zoo's)")
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds per case before it counts as a hang"
    )
    parser.add_argument(
        "--static-only", action="store_true", help="switch the probe off: the Python checks alone"
    )
    parser.add_argument("--keep", type=Path, help="save the mutants that crash or hang here")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.cases < 1 or args.timeout <= 0:
        parser.error("--cases must be >= 1 and --timeout > 0")
    models = args.models or sorted(zoo_dir().glob("*/*.tflite"))
    sources = [(path, path.read_bytes()) for path in models]
    maps = [field_map(data) for _, data in sources]
    rng = random.Random(args.seed)
    counts: Counter[str] = Counter()
    refusers: Counter[str] = Counter()
    findings = []
    runtime_errors: list[str] = []  # the first few, as examples
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fuzz-tflite-") as tmp:
        os.environ["TOOLKIT_HOME"] = tmp  # the probe's cache: not the user's, and empty
        os.environ.setdefault("TOOLKIT_PROBE_TIMEOUT_S", str(max(1.0, args.timeout / 2)))
        for case in range(args.cases):
            index = rng.randrange(len(sources))
            (path, data), (fields, ranges) = sources[index], maps[index]
            mutant, how = mutate(rng, data, fields, ranges)
            for _ in range(rng.choice([0, 0, 0, 0, 1, 2])):  # a third of the cases stack more mutations
                mutant, more = mutate(rng, mutant, fields, ranges)
                how += "+" + more
            target = Path(tmp) / f"case{case}.tflite"
            target.write_bytes(mutant)
            outcome, detail = run_case(target, args.static_only, args.timeout)
            counts[outcome] += 1
            if outcome == "refused":
                refusers[refused_by(detail)] += 1
            if outcome == "runtime_error" and len(runtime_errors) < 5:
                runtime_errors.append(f"case {case} {path.name} {how}: {detail[:200]}")
            if outcome in ("crash", "hang"):
                findings.append(
                    {
                        "case": case,
                        "model": path.name,
                        "mutation": how,
                        "outcome": outcome,
                        "detail": detail[:300],
                    }
                )
                if args.keep:
                    args.keep.mkdir(parents=True, exist_ok=True)
                    (args.keep / f"case{case}_{path.stem}.tflite").write_bytes(mutant)
            target.unlink()
    summary = {
        "cases": args.cases,
        "seed": args.seed,
        "static_only": args.static_only,
        **{name: counts[name] for name in OUTCOMES},
        "refused_by": dict(refusers),
        "seconds": round(time.monotonic() - started, 1),
        "findings": findings,
        "runtime_error_examples": runtime_errors,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"{args.cases} cases (seed {args.seed}{', probe off' if args.static_only else ''}) in "
            f"{summary['seconds']} s: " + ", ".join(f"{name} {counts[name]}" for name in OUTCOMES)
        )
        for who, n in refusers.most_common():
            print(f"  refused by {who}: {n}")
        for example in runtime_errors:
            print(f"  runtime error (exit 1, one line): {example}")
        for item in findings:
            print(
                f"  {item['outcome']}: case {item['case']} {item['model']} {item['mutation']}: {item['detail']}"
            )
    return 1 if counts["crash"] or counts["hang"] else 0


if __name__ == "__main__":
    sys.exit(main())

"""Read and verify a ``.tflite`` flatbuffer in pure Python, without handing it to the interpreter.

The LiteRT loader trusts its input and can crash the process on a truncated or corrupt file. Everything here
is bounds-checked Python: a bad file raises :class:`~toolkit.errors.UsageError` with one line, never a segfault.
The parsed :class:`ModelFile` is also what ``toolkit inspect`` reports from (ops, tensors, quantization).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toolkit.errors import UsageError

IDENTIFIER = b"TFL3"
MIN_SIZE = 32


def _schema():
    """The generated flatbuffer schema: shipped with ai-edge-litert, else TensorFlow's copy."""
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:  # pragma: no cover - only on tflite_runtime-only installs
        try:
            from tensorflow.lite.python import schema_py_generated as schema  # type: ignore[no-redef]
        except ImportError:
            raise UsageError(
                "cannot read .tflite files without ai-edge-litert (it carries the TFLite schema; "
                "tflite-runtime does not, and its last release cannot run with numpy 2): "
                "pip install ai-edge-litert"
            ) from None
    return schema


def _names(enum_cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


_DTYPES = {
    "FLOAT32": "float32",
    "FLOAT16": "float16",
    "INT32": "int32",
    "UINT8": "uint8",
    "INT64": "int64",
    "STRING": "string",
    "BOOL": "bool",
    "INT16": "int16",
    "COMPLEX64": "complex64",
    "INT8": "int8",
    "FLOAT64": "float64",
    "COMPLEX128": "complex128",
    "UINT64": "uint64",
    "RESOURCE": "resource",
    "VARIANT": "variant",
    "UINT32": "uint32",
    "UINT16": "uint16",
    "INT4": "int4",
    "BFLOAT16": "bfloat16",
}
_ITEMSIZE = {
    "float32": 4,
    "float16": 2,
    "int32": 4,
    "uint8": 1,
    "int64": 8,
    "bool": 1,
    "int16": 2,
    "int8": 1,
    "float64": 8,
    "uint64": 8,
    "uint32": 4,
    "uint16": 2,
    "bfloat16": 2,
    "complex64": 8,
}


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of subgraph 0 as stored in the file: shape, dtype name (e.g. ``"int8"``), buffer index
    and its quantization (one scale/zero point per tensor, or one per channel along ``quantized_dimension``)."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    buffer: int
    constant: bool  # holds data in the file (weights, biases, constants)
    scales: tuple[float, ...] = ()
    zero_points: tuple[int, ...] = ()
    quantized_dimension: int = 0
    buffer_bytes: int = 0  # bytes of data stored for it in the file (0: none)
    sparse: bool = False  # stored in a sparse format (its buffer is not shape x itemsize)
    variable: bool = False  # state the op keeps between invokes (LSTM), set up by the runtime

    @property
    def size(self) -> int:
        """Number of elements (product of ``shape``; 1 for a scalar)."""
        return int(np.prod(self.shape)) if self.shape else 1

    @property
    def per_channel(self) -> bool:
        """True when the tensor has more than one quantization scale (per-channel quantized)."""
        return len(self.scales) > 1


@dataclass(frozen=True)
class OpInfo:
    """One operator of subgraph 0: its position, name and version, and its input/output tensor indices."""

    index: int
    op: str  # builtin operator name, e.g. CONV_2D, or CUSTOM:<code>
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    version: int = 1  # the operator code's version (the kernel version the runtime must have)


@dataclass(frozen=True)
class Signature:
    """A signature def of subgraph 0: its key (``"serving_default"`` when unnamed) and the tensor index of
    each named input and output."""

    key: str
    inputs: dict[str, int]  # signature name -> tensor index
    outputs: dict[str, int]


@dataclass
class ModelFile:
    """A verified ``.tflite`` file as parsed by :func:`read_model_file`: size, schema version, description and
    the tensors, ops, inputs and outputs of subgraph 0 (the main graph), plus its signatures and metadata names."""

    path: Path
    size_bytes: int
    version: int
    description: str
    tensors: list[TensorInfo]
    ops: list[OpInfo]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    signatures: list[Signature] = field(default_factory=list)
    subgraph_count: int = 1
    metadata: tuple[str, ...] = ()

    def tensor(self, index: int) -> TensorInfo:
        """The :class:`TensorInfo` at tensor ``index`` of subgraph 0 (IndexError when out of range)."""
        return self.tensors[index]

    def io_names(self) -> tuple[dict[str, int], dict[str, int]]:
        """Input and output names -> tensor index, by signature when there is one, else by tensor name."""
        if self.signatures:
            sig = self.signatures[0]
            return dict(sig.inputs), dict(sig.outputs)
        return (
            {self.tensors[i].name: i for i in self.inputs},
            {self.tensors[i].name: i for i in self.outputs},
        )


class ModelFault(ValueError):
    """A fault found in the file; its message (one line) names what and where."""


def _bad(path: Path, why: str) -> UsageError:
    return UsageError(
        f"{path}: not a valid TFLite model ({why}); re-export it or check that the copy is complete"
    )


def read_model_file(path: str | Path) -> ModelFile:
    """Parse and verify ``path``; raise UsageError (exit 2) for anything that is not a sound TFLite model."""
    return read_model_bytes(path)[1]


def read_model_bytes(path: str | Path) -> tuple[bytes, ModelFile]:
    """The file's bytes and its verified parse (for readers of constant tensor data); errors as
    :func:`read_model_file`."""
    file = Path(path)
    if not file.exists():
        raise UsageError(f"model file not found: {file}")
    if file.is_dir():
        raise UsageError(f"{file} is a directory; expected a .tflite file")
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror}") from None
    return data, parse_model_bytes(data, file)


def parse_model_bytes(data: bytes, path: Path | str = "<bytes>") -> ModelFile:
    """Parse ``data`` and check what LiteRT's loader trusts (see :mod:`toolkit.runtime.tflite_check`); raise
    UsageError with one line naming the first fault."""
    file = Path(path)
    if len(data) == 0:
        raise _bad(file, "the file is empty")
    if len(data) < MIN_SIZE:
        raise _bad(file, f"only {len(data)} bytes")
    if data[4:8] != IDENTIFIER:
        head = data[:4]
        hint = ""
        if head[:3] == b"\xff\xd8\xff":
            hint = "; it is a JPEG image"
        elif head == b"\x89PNG":
            hint = "; it is a PNG image"
        elif head[:2] == b"PK":
            hint = "; it is a zip archive (a .keras file?)"
        raise _bad(file, f"missing the TFL3 file identifier{hint}")
    try:
        return _parse(data, file)
    except UsageError:
        raise
    except ModelFault as exc:
        raise _bad(file, str(exc)) from None
    except (
        struct.error,
        IndexError,
        ValueError,
        TypeError,
        OverflowError,
        UnicodeDecodeError,
        AttributeError,
    ) as exc:
        why = "data ends early" if isinstance(exc, (struct.error, IndexError)) else type(exc).__name__
        raise _bad(file, f"truncated or corrupt: {why}") from None


def _check_vec(n: int, elem: int, total: int, what: str) -> int:
    if n < 0 or n * elem > total:
        raise ModelFault(f"{what} length {n} exceeds the file")
    return n


@dataclass(frozen=True)
class _Graph:
    tensors: list[TensorInfo]
    ops: list[OpInfo]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


def _read_buffers(model, total: int) -> list[int]:
    """Byte count of every buffer (0: no data), each checked to lie inside the file."""
    sizes: list[int] = []
    for b in range(_check_vec(model.BuffersLength(), 4, total, "buffers")):
        buffer = model.Buffers(b)
        offset, size = buffer.Offset(), buffer.Size()
        if offset > 1:  # data stored after the flatbuffer (models > 2 GB)
            if offset + size > total:
                raise ModelFault(f"buffer {b} reaches beyond the end of the file")
            sizes.append(int(size))
            continue
        n = buffer.DataLength()
        if n:
            start = buffer._tab.Vector(buffer._tab.Offset(4))
            if start + n > total:
                raise ModelFault(f"buffer {b} reaches beyond the end of the file")
        sizes.append(int(n))
    return sizes


def _read_codes(model, schema, total: int) -> list[tuple[str, int]]:
    """(operator name, version) for every operator code."""
    op_names = _names(schema.BuiltinOperator)
    codes: list[tuple[str, int]] = []
    for c in range(_check_vec(model.OperatorCodesLength(), 4, total, "operator codes")):
        oc = model.OperatorCodes(c)
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        name = op_names.get(code, f"BUILTIN_{code}")
        if name == "CUSTOM":
            custom = oc.CustomCode()
            name = f"CUSTOM:{custom.decode('utf-8', 'replace') if custom else '?'}"
        codes.append((name, int(oc.Version())))
    return codes


def _read_tensors(graph, type_names: dict[int, str], buffer_bytes: list[int], total: int) -> list[TensorInfo]:
    n_buffers = len(buffer_bytes)
    tensors: list[TensorInfo] = []
    for t in range(_check_vec(graph.TensorsLength(), 4, total, "tensors")):
        tensor = graph.Tensors(t)
        _check_vec(tensor.ShapeLength(), 4, total, "shape")
        shape = tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
        dtype = _DTYPES.get(type_names.get(tensor.Type(), ""), f"type{tensor.Type()}")
        bidx = int(tensor.Buffer())
        if n_buffers and bidx >= n_buffers:
            raise ModelFault(f"tensor {t} names buffer {bidx} of {n_buffers}")
        stored = buffer_bytes[bidx] if n_buffers else 0
        scales: tuple[float, ...] = ()
        zps: tuple[int, ...] = ()
        qdim = 0
        quant = tensor.Quantization()
        if quant is not None:
            if quant.ScaleLength():
                _check_vec(quant.ScaleLength(), 4, total, "scales")
                scales = tuple(float(s) for s in quant.ScaleAsNumpy())
            if quant.ZeroPointLength():
                _check_vec(quant.ZeroPointLength(), 8, total, "zero points")
                zps = tuple(int(z) for z in quant.ZeroPointAsNumpy())
            qdim = int(quant.QuantizedDimension())
        raw_name = tensor.Name()
        tensors.append(
            TensorInfo(
                index=t,
                name=raw_name.decode("utf-8", "replace") if raw_name else f"tensor_{t}",
                shape=shape,
                dtype=dtype,
                buffer=bidx,
                constant=stored > 0,
                scales=scales,
                zero_points=zps,
                quantized_dimension=qdim,
                buffer_bytes=stored,
                sparse=tensor.Sparsity() is not None,
                variable=bool(tensor.IsVariable()),
            )
        )
    return tensors


def _read_graph(
    graph, codes: list[tuple[str, int]], type_names: dict[int, str], buffer_bytes: list[int], total: int
) -> _Graph:
    tensors = _read_tensors(graph, type_names, buffer_bytes, total)
    n_tensors = len(tensors)

    def indices(length: int, getter, what: str) -> tuple[int, ...]:
        _check_vec(length, 4, total, what)
        out = tuple(int(getter(i)) for i in range(length))
        for i in out:
            if i >= n_tensors or i < -1:
                raise ModelFault(f"{what} tensor index {i} out of range (the graph has {n_tensors} tensors)")
        return out

    ops: list[OpInfo] = []
    for o in range(_check_vec(graph.OperatorsLength(), 4, total, "operators")):
        op = graph.Operators(o)
        code = int(op.OpcodeIndex())
        if code >= len(codes):
            raise ModelFault(f"operator {o} uses operator code {code} of {len(codes)}")
        name, version = codes[code]
        ops.append(
            OpInfo(
                o,
                name,
                indices(op.InputsLength(), op.Inputs, "op input"),
                indices(op.OutputsLength(), op.Outputs, "op output"),
                version,
            )
        )
    return _Graph(
        tensors,
        ops,
        indices(graph.InputsLength(), graph.Inputs, "graph input"),
        indices(graph.OutputsLength(), graph.Outputs, "graph output"),
    )


def _parse(data: bytes, file: Path) -> ModelFile:
    from toolkit.runtime.tflite_check import check_graph

    schema = _schema()
    total = len(data)
    buf = bytearray(data) if not isinstance(data, bytearray) else data
    root = struct.unpack_from("<I", buf, 0)[0]
    if root >= total:
        raise ModelFault("the root table offset points beyond the end of the file")
    model = schema.Model.GetRootAs(buf, 0)
    type_names = _names(schema.TensorType)
    buffer_bytes = _read_buffers(model, total)
    codes = _read_codes(model, schema, total)

    n_sub = _check_vec(model.SubgraphsLength(), 4, total, "subgraphs")
    if n_sub < 1:
        raise ModelFault("no subgraphs")
    graphs = []
    for s in range(n_sub):  # every subgraph is checked; subgraph 0 (the main graph) is what is reported
        graph = _read_graph(model.Subgraphs(s), codes, type_names, buffer_bytes, total)
        check_graph(graph.tensors, graph.ops, s, graph.inputs, graph.outputs)
        graphs.append(graph)
    main = graphs[0]
    n_tensors = len(main.tensors)

    signatures: list[Signature] = []
    for s in range(_check_vec(model.SignatureDefsLength(), 4, total, "signatures")):
        sig = model.SignatureDefs(s)
        if int(sig.SubgraphIndex()) != 0:
            continue
        ins = {}
        for i in range(_check_vec(sig.InputsLength(), 4, total, "signature inputs")):
            tm = sig.Inputs(i)
            ins[tm.Name().decode()] = int(tm.TensorIndex())
        outs = {}
        for i in range(_check_vec(sig.OutputsLength(), 4, total, "signature outputs")):
            tm = sig.Outputs(i)
            outs[tm.Name().decode()] = int(tm.TensorIndex())
        if any(v >= n_tensors or v < 0 for v in [*ins.values(), *outs.values()]):
            raise ModelFault("a signature names a tensor index out of range")
        key = sig.SignatureKey()
        signatures.append(Signature(key.decode() if key else "serving_default", ins, outs))

    metadata = []
    for m in range(_check_vec(model.MetadataLength(), 4, total, "metadata")):
        name = model.Metadata(m).Name()
        metadata.append(name.decode("utf-8", "replace") if name else "")
    desc = model.Description()
    return ModelFile(
        path=file,
        size_bytes=total,
        version=int(model.Version()),
        description=desc.decode("utf-8", "replace") if desc else "",
        tensors=main.tensors,
        ops=main.ops,
        inputs=main.inputs,
        outputs=main.outputs,
        signatures=signatures,
        subgraph_count=n_sub,
        metadata=tuple(metadata),
    )


def itemsize(dtype: str) -> int:
    """Bytes per element of a dtype name such as ``"int8"``; 4 for names it does not list (string, int4, ...)."""
    return _ITEMSIZE.get(dtype, 4)


def op_options(data: bytes, op_index: int) -> dict[str, object]:
    """The builtin options of operator ``op_index`` (subgraph 0) as a dict of the schema's camelCase fields,
    e.g. ``{"strideW": 2, "padding": 0, "fusedActivationFunction": 3, ...}``; ``{}`` when the op has none.

    ``data`` is the file's bytes (already verified by :func:`parse_model_bytes`). Reads one operator only.
    """
    schema = _schema()
    buf = data if isinstance(data, bytearray) else bytearray(data)
    graph = schema.Model.GetRootAs(buf, 0).Subgraphs(0)
    options = schema.OperatorT.InitFromObj(graph.Operators(op_index)).builtinOptions
    return dict(vars(options)) if options is not None else {}


def tensor_data(data: bytes, tensor: TensorInfo) -> np.ndarray:
    """The stored (raw, still quantized) values of a constant tensor as a numpy array of its shape and dtype.

    Raises UsageError for a tensor without data or a dtype numpy cannot hold (int4, string, resource).
    """
    if not tensor.constant:
        raise UsageError(f"tensor '{tensor.name}' holds no constant data")
    np_dtype = {"bfloat16": None, "int4": None, "string": None, "resource": None, "variant": None}.get(
        tensor.dtype, tensor.dtype
    )
    if np_dtype is None or tensor.dtype.startswith("type"):
        raise UsageError(f"tensor '{tensor.name}' has dtype {tensor.dtype}, which cannot be read as numbers")
    schema = _schema()
    buf = data if isinstance(data, bytearray) else bytearray(data)
    buffer = schema.Model.GetRootAs(buf, 0).Buffers(tensor.buffer)
    if buffer.Offset() > 1:  # stored after the flatbuffer (models > 2 GB)
        raw = bytes(buf[buffer.Offset() : buffer.Offset() + buffer.Size()])
    else:
        raw = buffer.DataAsNumpy().tobytes()
    count = tensor.size
    if len(raw) != count * itemsize(tensor.dtype):
        raise UsageError(
            f"tensor '{tensor.name}': {len(raw)} bytes stored for shape {list(tensor.shape)} "
            f"{tensor.dtype}; the file is corrupt"
        )
    return np.frombuffer(raw, dtype=np.dtype(np_dtype)).reshape(tensor.shape).copy()

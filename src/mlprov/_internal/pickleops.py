"""A static walker over a pickle's opcode stream that frames it the way the C unpickler does.

It never builds an object. It follows the opcodes with the same argument framing,
stack/mark/memo bookkeeping and error points as CPython's ``_pickle.c`` (3.11),
and lists every import the unpickler would perform before it stops: ``GLOBAL``,
``INST``, ``STACK_GLOBAL`` (arguments followed through the memo) and, in strict
mode, ``EXT1/2/4`` extension codes. Values are checked only as far as the C
unpickler checks them and never more strictly: ``pickletools`` rejects
``I0x1`` where the C unpickler (``strtol``/``int(s, 0)``) accepts it, so
pickletools-based scanners stop early and miss what follows.

Where the walker stops (error) the C unpickler stops too, so an import the walker
has not reached cannot run. A stack value the walker cannot know (the result of a
call, a global, a persistent object) is ``ANY``: a ``STACK_GLOBAL`` of it is an
import of ``<unknown>.<unknown>``.

``joblib=True`` walks the stream the way ``joblib.load`` reads it: joblib's unpickler
(the pure-Python one) reads an array's raw bytes, or a nested pickle for an object
array, from the stream right after each ``BUILD`` of a ``NumpyArrayWrapper``
(https://github.com/joblib/joblib/blob/main/joblib/numpy_pickle.py). How many bytes
depends on the wrapper's state (shape, dtype, alignment padding), so the walker keeps
the literal values it can know (ints, ``None``, bools, tuples, dicts with str keys, a
``numpy.dtype`` built from its pickled arguments) and skips exactly what joblib would.
Whatever it cannot follow exactly (a wrapper made another way, state it does not
expect, a dtype other than the plain ones numpy writes, array bytes inside a frame)
stops the walk with an error: the file is then unscannable, never misread.
"""

from __future__ import annotations

import codecs
import re
import warnings
from dataclasses import dataclass, field
from typing import Final, Protocol

__all__ = ["UNKNOWN", "Buffer", "Walk", "walk"]

UNKNOWN: Final = "<unknown>"


class Buffer(Protocol):
    """What the walker reads: ``bytes`` or an ``mmap``."""

    def __len__(self) -> int: ...
    def __getitem__(self, index: int, /) -> int: ...
    def find(self, sub: bytes, start: int = ..., /) -> int: ...


class _Any:
    """A stack value the walker cannot know (it may be a str)."""


class _Other:
    """A stack value that is certainly not a str."""


ANY: Final = _Any()
OTHER: Final = _Other()


@dataclass(eq=False)
class _Known(_Other):
    """A value that is certainly not a str and that the walker knows: int, bool or None."""

    value: int | bool | None


@dataclass(eq=False)
class _Tuple(_Other):
    items: tuple[object, ...]


@dataclass(eq=False)
class _Dict(_Other):
    """A dict; ``exact`` while every key set so far was a str and is known."""

    items: dict[str, object] = field(default_factory=dict)
    exact: bool = True


@dataclass(eq=False)
class _Global(_Any):
    """What a ``GLOBAL``/``STACK_GLOBAL`` pushed (it may be anything, a str too)."""

    module: str
    name: str


@dataclass(eq=False)
class _Wrapper(_Any):
    """An instance of joblib's ``NumpyArrayWrapper``; ``known`` while its state is."""

    module: str
    known: bool
    attrs: dict[str, object] = field(default_factory=dict)


@dataclass(eq=False)
class _DType(_Any):
    """A ``numpy.dtype`` built from its pickled arguments, and the state set on it."""

    args: object
    states: list[object] = field(default_factory=list)


# Where joblib's NumpyArrayWrapper lives (joblib, and the copy old scikit-learn bundled).
_WRAPPER_MODULES: Final = frozenset({"joblib.numpy_pickle",
                                     "sklearn.externals.joblib.numpy_pickle"})
_WRAPPER_ATTRS: Final = frozenset({"subclass", "shape", "order", "dtype", "allow_mmap",
                                   "numpy_array_alignment_bytes"})
_DESCR = re.compile(r"([biufcOUSVmM])([0-9]{1,9})")
# Item sizes of the dtypes numpy pickles as "<kind><size>" with no element size in the
# state; U, S and V carry their element size in the state (U: 4 bytes a character).
_FIXED_SIZES: Final = {"b": {1}, "i": {1, 2, 4, 8}, "u": {1, 2, 4, 8}, "f": {2, 4, 8},
                       "c": {8, 16}, "m": {8}, "M": {8}, "O": {4, 8}}

_MAX_SSIZE = (1 << 63) - 1
_INT_PREFIX = re.compile(rb"[ \t\n\v\f\r]*[+-]?(?:0[xX][0-9a-fA-F]+|[0-9]+)")
_FLOAT_PREFIX = re.compile(
    rb"[+-]?(?:[0-9]+\.?[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?"
    rb"|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN])")

# opcodes that push one value that is never a str
_PUSH_OTHER: Final = frozenset(b"JKMNG\x88\x89}])\x8f")
# fixed-size arguments of those
_FIXED: Final = {ord("J"): 4, ord("K"): 1, ord("M"): 2, ord("G"): 8}


class _Stop(Exception):
    """The C unpickler would raise here."""


@dataclass
class Walk:
    """The outcome of walking one pickle."""

    imports: list[tuple[str, str]] = field(default_factory=list)
    end: int | None = None  # offset after STOP, None when the walk stopped on an error
    error: str | None = None
    opcodes: int = 0
    frame_end: int = 0  # end of the last FRAME (the pure-Python unpickler reads up to it)


def _c_int_line(line: bytes) -> bool:
    """Whether the C unpickler accepts ``line`` (with its newline) as an INT argument."""
    match = _INT_PREFIX.match(line)
    if match is not None and line[match.end():match.end() + 1] in (b"\n", b"\x00"):
        return True  # strtol(s, &end, 0) consumed it up to the newline or a NUL
    if line[:1] in (b"\n", b"\x00"):
        return True  # strtol converted nothing and end points at the newline
    return _long_line(line, strip_l=False)


def _long_line(line: bytes, *, strip_l: bool) -> bool:
    body = line[:-1]
    if strip_l and body.endswith(b"L"):
        body = body[:-1]
    body = body.split(b"\x00", 1)[0]  # PyLong_FromString reads a C string
    try:
        int(body, 0)
    except ValueError:
        return False
    return True


def _float_line(line: bytes) -> bool:
    match = _FLOAT_PREFIX.match(line)
    if match is not None and line[match.end():match.end() + 1] in (b"\n", b"\x00"):
        return True
    try:
        float(line.split(b"\x00", 1)[0])
    except ValueError:
        return False
    return True


def _module_ok(module: str) -> bool:
    return bool(module) and all(part.isidentifier() for part in module.split("."))


def _plain_fields(names: object, record: object) -> bool:
    """Whether a structured dtype's fields are named and each of a plain, object-free dtype.

    Raises _Stop (from _item_size) for a field dtype the scan cannot follow.
    """
    if not (isinstance(names, _Tuple) and isinstance(record, _Dict) and record.exact
            and all(isinstance(name, str) for name in names.items)
            and set(names.items) == set(record.items)):
        return False
    for value in record.items.values():
        if not (isinstance(value, _Tuple) and len(value.items) in (2, 3)):
            return False
        if _item_size(value.items[0])[1]:
            return False  # an object field: joblib would read a nested pickle, numpy may not
    return True


def _item_size(dtype: object) -> tuple[int, bool]:
    """The item size of a dtype joblib reads, and whether it holds objects.

    Raises _Stop for anything but the plain dtypes numpy pickles itself.
    """
    if not isinstance(dtype, _DType):
        raise _Stop("a joblib array's dtype is not a numpy.dtype the scan can follow")
    args = dtype.args
    if not (isinstance(args, _Tuple) and len(args.items) == 3 and isinstance(args.items[0], str)
            and all(isinstance(a, _Known) and isinstance(a.value, bool)
                    for a in args.items[1:])):
        raise _Stop("a joblib array's dtype has arguments numpy does not write")
    descr = args.items[0]
    assert isinstance(descr, str)
    match = _DESCR.fullmatch(descr)
    if match is None or len(dtype.states) > 1:
        raise _Stop(f"a joblib array's dtype {descr!r} is not one the scan can follow")
    kind, size = match.group(1), int(match.group(2))
    elsize: object = -1
    flags: object = 1 if kind == "O" else 0
    if dtype.states:
        state = dtype.states[0]
        if not (isinstance(state, _Tuple) and len(state.items) in (8, 9)):
            raise _Stop("a joblib array's dtype has a state numpy does not write")
        fields = [v.value if isinstance(v, _Known) else v for v in state.items[:8]]
        version, order, subarray, names, record, elsize, _, flags = fields
        if (version not in (3, 4) or (len(state.items) == 9) != (version == 4)
                or order not in ("<", ">", "|", "=") or subarray is not None
                or type(elsize) is not int or type(flags) is not int):
            raise _Stop("a joblib array's dtype has a state numpy does not write")
        if (names, record) != (None, None) and not (kind == "V" and _plain_fields(names, record)):
            raise _Stop("a joblib array's dtype has fields the scan cannot follow")
        if version == 4 and kind not in "mM":
            raise _Stop("a joblib array's dtype has a state numpy does not write")
    assert isinstance(elsize, int) and isinstance(flags, int)
    if kind in _FIXED_SIZES:
        if size not in _FIXED_SIZES[kind] or elsize != -1:
            raise _Stop(f"a joblib array's dtype {descr!r} is not one the scan can follow")
        itemsize = size
    else:
        itemsize = size * 4 if kind == "U" else size
        if dtype.states and elsize != itemsize:
            raise _Stop(f"a joblib array's dtype {descr!r} has another element size")
    if bool(flags & 1) != (kind == "O"):
        raise _Stop(f"a joblib array's dtype {descr!r} has flags numpy does not write")
    return itemsize, kind == "O"


def walk(buf: Buffer, start: int = 0, *, strict: bool = True, joblib: bool = False) -> Walk:
    """Walk the pickle that starts at ``start``; never raises for any input.

    ``strict`` counts extension codes (``EXT*``) as imports; without it (content
    sniffing of a file not named as a pickle) they stop the walk, since no extension
    code is registered in a stock Python and the C unpickler raises on them.
    ``joblib`` reads the stream as ``joblib.load`` does (see the module docstring).
    """
    result = Walk()
    n = len(buf)
    stack: list[object] = []
    marks: list[int] = []
    memo: dict[int, object] = {}
    pos = start
    at = start

    def take(count: int) -> bytes:
        nonlocal pos
        if count < 0 or count > n - pos:
            raise _Stop("the pickle is truncated")
        data = bytes(buf[pos:pos + count])  # type: ignore[index]
        pos += count
        return data

    def line() -> bytes:
        nonlocal pos
        end = buf.find(b"\n", pos)
        if end < 0:
            raise _Stop("the pickle is truncated (a line has no newline)")
        data = bytes(buf[pos:end + 1])  # type: ignore[index]
        pos = end + 1
        return data

    def fence() -> int:
        return marks[-1] if marks else 0

    def pop(count: int) -> list[object]:
        if len(stack) - count < fence():
            raise _Stop("unpickling stack underflow")
        items = stack[len(stack) - count:]
        del stack[len(stack) - count:]
        return items

    def top() -> object:
        if len(stack) <= fence():
            raise _Stop("unpickling stack underflow")
        return stack[-1]

    def pop_mark() -> list[object]:
        if not marks:
            raise _Stop("could not find MARK")
        mark = marks.pop()
        items = stack[mark:]
        del stack[mark:]
        return items

    def uint(size: int) -> int:
        return int.from_bytes(take(size), "little")

    def set_items(target: object, items: list[object]) -> None:
        if isinstance(target, _Dict):
            for key, value in zip(items[::2], items[1::2], strict=True):
                if isinstance(key, str):
                    target.items[key] = value
                else:
                    target.exact = False

    def text(data: bytes) -> object:
        try:
            return data.decode("ascii")  # the same str under every encoding a loader passes
        except UnicodeDecodeError:
            return ANY

    def add_import(module: str, name: str) -> None:
        if (module, name) not in result.imports:
            result.imports.append((module, name))

    def global_lines() -> _Global:
        raw_module, raw_name = line(), line()
        try:
            module = raw_module[:-1].decode("utf-8")
            name = raw_name[:-1].decode("utf-8")
        except UnicodeDecodeError:
            raise _Stop("a GLOBAL argument is not UTF-8") from None
        if not _module_ok(module) or not name:
            raise _Stop("a GLOBAL names no importable module")
        add_import(module, name)
        return _Global(module, name)

    def instance(cls: object, args: object, *, reduce: bool) -> object:
        """What calling ``cls`` with ``args`` pushes (REDUCE) or ``cls.__new__`` (NEWOBJ)."""
        if isinstance(cls, _Global):
            if cls.name == "NumpyArrayWrapper":
                # NEWOBJ with no arguments leaves no attribute set; a call runs __init__.
                empty = not reduce and isinstance(args, _Tuple) and not args.items
                return _Wrapper(cls.module, known=empty and cls.module in _WRAPPER_MODULES)
            if reduce and (cls.module, cls.name) == ("numpy", "dtype"):
                return _DType(args)
        return ANY

    def build(state: object, target: object) -> None:
        """BUILD: set ``state`` on ``target``; joblib reads an array after a wrapper's."""
        if isinstance(target, _DType):
            target.states.append(state)
        if not isinstance(target, _Wrapper):
            return
        if (isinstance(state, _Dict) and state.exact and set(state.items) <= _WRAPPER_ATTRS):
            target.attrs.update(state.items)
        else:
            target.known = False
        if joblib:
            read_array(target)

    def read_array(wrapper: _Wrapper) -> None:
        """Skip what joblib reads after a wrapper's BUILD, or raise _Stop."""
        nonlocal pos
        if wrapper.module not in _WRAPPER_MODULES or not wrapper.known:
            raise _Stop("a joblib array wrapper the scan cannot follow")
        if result.frame_end > pos:
            raise _Stop("joblib array data inside a pickle frame")
        shape = wrapper.attrs.get("shape")
        if not (isinstance(shape, _Tuple) and all(
                isinstance(d, _Known) and type(d.value) is int and d.value >= 0
                for d in shape.items)):
            raise _Stop("a joblib array's shape is not a tuple of sizes")
        itemsize, objects = _item_size(wrapper.attrs.get("dtype"))
        if objects:
            mmap = wrapper.attrs.get("allow_mmap")
            if mmap is not None and not (isinstance(mmap, _Known) and mmap.value is False):
                raise _Stop("a joblib object array that may be memory-mapped")
            inner = walk(buf, pos, strict=strict)  # joblib unpickles it with a fresh unpickler
            for module, name in inner.imports:
                add_import(module, name)
            if inner.end is None:
                raise _Stop(f"a joblib object array: {inner.error}")
            pos = max(inner.end, inner.frame_end)
            return
        alignment = wrapper.attrs.get("numpy_array_alignment_bytes")
        if alignment is not None and not (isinstance(alignment, _Known)
                                          and alignment.value is None):
            take(uint(1))
        count = itemsize
        for dim in shape.items:
            assert isinstance(dim, _Known) and isinstance(dim.value, int)
            count *= dim.value
        if count > n - pos:
            raise _Stop("the pickle is truncated (joblib array data)")
        pos += count

    try:
        while True:
            if pos >= n:
                raise _Stop("the pickle ends without a STOP opcode")
            op = buf[pos]
            at = pos
            pos += 1
            result.opcodes += 1
            if op in _PUSH_OTHER:
                value: object = OTHER
                if op in _FIXED:
                    data = take(_FIXED[op])
                    if op != 0x47:  # BINFLOAT
                        value = _Known(int.from_bytes(data, "little", signed=op == 0x4A))
                elif op in (0x4E, 0x88, 0x89):  # NONE, NEWTRUE, NEWFALSE
                    value = _Known({0x4E: None, 0x88: True, 0x89: False}[op])
                elif op == 0x29:  # EMPTY_TUPLE
                    value = _Tuple(())
                elif op == 0x7D:  # EMPTY_DICT
                    value = _Dict()
                stack.append(value)
            elif op == 0x2E:  # STOP
                top()
                result.end = pos
                return result
            elif op == 0x28:  # MARK
                marks.append(len(stack))
            elif op == 0x80:  # PROTO
                if take(1)[0] > 5:
                    raise _Stop("unsupported pickle protocol")
            elif op == 0x95:  # FRAME
                size = uint(8)
                if size > n - pos:
                    raise _Stop("the pickle is truncated (frame)")
                result.frame_end = pos + size
            elif op == 0x30:  # POP
                if len(stack) > fence():
                    stack.pop()
                elif marks:
                    marks.pop()
                else:
                    raise _Stop("unpickling stack underflow")
            elif op == 0x31:  # POP_MARK
                pop_mark()
            elif op == 0x32:  # DUP
                stack.append(top())
            elif op == 0x49:  # INT
                if not _c_int_line(line()):
                    raise _Stop("invalid INT argument")
                stack.append(OTHER)
            elif op == 0x4C:  # LONG
                if not _long_line(line(), strip_l=True):
                    raise _Stop("invalid LONG argument")
                stack.append(OTHER)
            elif op == 0x46:  # FLOAT
                if not _float_line(line()):
                    raise _Stop("invalid FLOAT argument")
                stack.append(OTHER)
            elif op in (0x8A, 0x8B):  # LONG1, LONG4
                size = uint(1) if op == 0x8A else int.from_bytes(take(4), "little", signed=True)
                if size < 0:
                    raise _Stop("LONG pickle has negative byte count")
                data = take(size)
                stack.append(_Known(int.from_bytes(data, "little", signed=True))
                             if size <= 8 else OTHER)
            elif op in (0x42, 0x43, 0x8E, 0x96):  # BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8
                size = uint({0x42: 4, 0x43: 1}.get(op, 8))
                if size > _MAX_SSIZE:
                    raise _Stop("byte count too large")
                take(size)
                stack.append(OTHER)
            elif op == 0x53:  # STRING
                body = line()[:-1]
                if len(body) < 2 or body[:1] != body[-1:] or body[:1] not in (b"'", b'"'):
                    raise _Stop("the STRING opcode argument must be quoted")
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        value = codecs.escape_decode(body[1:-1])[0]
                except (ValueError, UnicodeError):
                    raise _Stop("invalid STRING escape") from None
                stack.append(text(value))
            elif op in (0x54, 0x55):  # BINSTRING, SHORT_BINSTRING
                stack.append(text(take(uint(4 if op == 0x54 else 1))))
            elif op == 0x56:  # UNICODE
                try:
                    stack.append(codecs.raw_unicode_escape_decode(line()[:-1])[0])
                except UnicodeError:
                    raise _Stop("invalid UNICODE argument") from None
            elif op in (0x58, 0x8C, 0x8D):  # BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
                size = uint({0x58: 4, 0x8C: 1}.get(op, 8))
                if size > _MAX_SSIZE:
                    raise _Stop("byte count too large")
                try:
                    stack.append(take(size).decode("utf-8", "surrogatepass"))
                except UnicodeDecodeError:
                    raise _Stop("invalid UTF-8 in a unicode argument") from None
            elif op == 0x50:  # PERSID
                line()
                stack.append(ANY)
            elif op == 0x51:  # BINPERSID
                pop(1)
                stack.append(ANY)
            elif op == 0x52:  # REDUCE
                func, args = pop(2)
                stack.append(instance(func, args, reduce=True))
            elif op == 0x62:  # BUILD
                if len(stack) - 2 < fence():
                    raise _Stop("unpickling stack underflow")
                state = stack.pop()
                build(state, stack[-1])
            elif op == 0x61:  # APPEND
                if len(stack) - 1 <= fence():
                    raise _Stop("unpickling stack underflow")
                stack.pop()
            elif op == 0x73:  # SETITEM
                if len(stack) - 2 <= fence():
                    raise _Stop("unpickling stack underflow")
                set_items(stack[-3], stack[-2:])
                del stack[-2:]
            elif op in (0x65, 0x75, 0x90):  # APPENDS, SETITEMS, ADDITEMS
                items = pop_mark()
                if len(stack) <= fence():
                    raise _Stop("unpickling stack underflow")
                if op == 0x75 and len(items) % 2:
                    raise _Stop("odd number of items for SETITEMS")
                if op == 0x75:
                    set_items(stack[-1], items)
            elif op in (0x64, 0x6C, 0x74, 0x91):  # DICT, LIST, TUPLE, FROZENSET
                items = pop_mark()
                if op == 0x64 and len(items) % 2:
                    raise _Stop("odd number of items for DICT")
                value = OTHER
                if op == 0x74:
                    value = _Tuple(tuple(items))
                elif op == 0x64:
                    value = _Dict()
                    set_items(value, items)
                stack.append(value)
            elif op in (0x85, 0x86, 0x87):  # TUPLE1..3
                stack.append(_Tuple(tuple(pop(op - 0x84))))
            elif op == 0x81:  # NEWOBJ
                cls, args = pop(2)
                stack.append(instance(cls, args, reduce=False))
            elif op == 0x92:  # NEWOBJ_EX
                stack.append(instance(pop(3)[0], OTHER, reduce=False))
            elif op == 0x63:  # GLOBAL
                stack.append(global_lines())
            elif op == 0x69:  # INST: the mark is taken before the lines are read
                pop_mark()
                stack.append(instance(global_lines(), OTHER, reduce=True))
            elif op == 0x6F:  # OBJ
                items = pop_mark()
                if not items:
                    raise _Stop("unpickling stack underflow")
                stack.append(instance(items[0], OTHER, reduce=True))
            elif op == 0x93:  # STACK_GLOBAL
                module, name = pop(2)
                if isinstance(module, _Other) or isinstance(name, _Other):
                    raise _Stop("STACK_GLOBAL requires str")
                if isinstance(module, str) and isinstance(name, str):
                    if not _module_ok(module) or not name:
                        raise _Stop("a STACK_GLOBAL names no importable module")
                    add_import(module, name)
                    stack.append(_Global(module, name))
                else:
                    add_import(UNKNOWN, UNKNOWN)
                    stack.append(ANY)
            elif op in (0x82, 0x83, 0x84):  # EXT1, EXT2, EXT4
                code = uint({0x82: 1, 0x83: 2, 0x84: 4}[op])
                if code <= 0:
                    raise _Stop("EXT specifies code <= 0")
                if not strict:
                    raise _Stop("unregistered extension code")
                add_import("<extension>", str(code))
                stack.append(ANY)
            elif op in (0x70, 0x71, 0x72, 0x94):  # PUT, BINPUT, LONG_BINPUT, MEMOIZE
                if op == 0x70:
                    raw = line()
                    try:
                        index = int(raw, 10)
                    except ValueError:
                        raise _Stop("invalid PUT argument") from None
                    if index < 0:
                        raise _Stop("negative PUT argument")
                elif op == 0x94:
                    index = len(memo)
                else:
                    index = uint(1 if op == 0x71 else 4)
                memo[index] = top()
            elif op in (0x67, 0x68, 0x6A):  # GET, BINGET, LONG_BINGET
                if op == 0x67:
                    try:
                        index = int(line(), 10)
                    except ValueError:
                        raise _Stop("invalid GET argument") from None
                else:
                    index = uint(1 if op == 0x68 else 4)
                if index not in memo:
                    raise _Stop("memo value not found")
                stack.append(memo[index])
            elif op == 0x97:  # NEXT_BUFFER
                stack.append(ANY)
            elif op == 0x98:  # READONLY_BUFFER
                top()
            else:
                raise _Stop(f"invalid opcode 0x{op:02x}")
    except _Stop as stop:
        result.error = f"{stop} (opcode at offset {at})"
    except (MemoryError, RecursionError, OverflowError, ValueError) as exc:  # pragma: no cover
        result.error = f"{type(exc).__name__} at offset {pos}"
    return result

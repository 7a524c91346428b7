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


def walk(buf: Buffer, start: int = 0, *, strict: bool = True) -> Walk:
    """Walk the pickle that starts at ``start``; never raises for any input.

    ``strict`` counts extension codes (``EXT*``) as imports; without it (content
    sniffing of a file not named as a pickle) they stop the walk, since no extension
    code is registered in a stock Python and the C unpickler raises on them.
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

    def text(data: bytes) -> object:
        try:
            return data.decode("ascii")  # the same str under every encoding a loader passes
        except UnicodeDecodeError:
            return ANY

    def add_import(module: str, name: str) -> None:
        if (module, name) not in result.imports:
            result.imports.append((module, name))

    def global_lines() -> None:
        raw_module, raw_name = line(), line()
        try:
            module = raw_module[:-1].decode("utf-8")
            name = raw_name[:-1].decode("utf-8")
        except UnicodeDecodeError:
            raise _Stop("a GLOBAL argument is not UTF-8") from None
        if not _module_ok(module) or not name:
            raise _Stop("a GLOBAL names no importable module")
        add_import(module, name)

    try:
        while True:
            if pos >= n:
                raise _Stop("the pickle ends without a STOP opcode")
            op = buf[pos]
            at = pos
            pos += 1
            result.opcodes += 1
            if op in _PUSH_OTHER:
                if op in _FIXED:
                    take(_FIXED[op])
                stack.append(OTHER)
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
                if uint(8) > n - pos:
                    raise _Stop("the pickle is truncated (frame)")
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
                take(size)
                stack.append(OTHER)
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
                pop(2)
                stack.append(ANY)
            elif op == 0x62:  # BUILD
                if len(stack) - 2 < fence():
                    raise _Stop("unpickling stack underflow")
                stack.pop()
            elif op == 0x61:  # APPEND
                if len(stack) - 1 <= fence():
                    raise _Stop("unpickling stack underflow")
                stack.pop()
            elif op == 0x73:  # SETITEM
                if len(stack) - 2 <= fence():
                    raise _Stop("unpickling stack underflow")
                del stack[-2:]
            elif op in (0x65, 0x75, 0x90):  # APPENDS, SETITEMS, ADDITEMS
                items = pop_mark()
                if len(stack) <= fence():
                    raise _Stop("unpickling stack underflow")
                if op == 0x75 and len(items) % 2:
                    raise _Stop("odd number of items for SETITEMS")
            elif op in (0x64, 0x6C, 0x74, 0x91):  # DICT, LIST, TUPLE, FROZENSET
                items = pop_mark()
                if op == 0x64 and len(items) % 2:
                    raise _Stop("odd number of items for DICT")
                stack.append(OTHER)
            elif op in (0x85, 0x86, 0x87):  # TUPLE1..3
                pop(op - 0x84)
                stack.append(OTHER)
            elif op == 0x81:  # NEWOBJ
                pop(2)
                stack.append(ANY)
            elif op == 0x92:  # NEWOBJ_EX
                pop(3)
                stack.append(ANY)
            elif op == 0x63:  # GLOBAL
                global_lines()
                stack.append(ANY)
            elif op == 0x69:  # INST: the mark is taken before the lines are read
                pop_mark()
                global_lines()
                stack.append(ANY)
            elif op == 0x6F:  # OBJ
                if not pop_mark():
                    raise _Stop("unpickling stack underflow")
                stack.append(ANY)
            elif op == 0x93:  # STACK_GLOBAL
                module, name = pop(2)
                if isinstance(module, _Other) or isinstance(name, _Other):
                    raise _Stop("STACK_GLOBAL requires str")
                if isinstance(module, str) and isinstance(name, str):
                    if not _module_ok(module) or not name:
                        raise _Stop("a STACK_GLOBAL names no importable module")
                    add_import(module, name)
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

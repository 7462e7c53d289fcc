"""How many bytes an Arrow IPC body decodes to, read from its messages' metadata before any
buffer is decompressed.

A compressed buffer starts with its decoded length (a little-endian int64; -1 when the buffer
was left uncompressed), and the reader allocates that length before it decompresses: 1.7 MiB of
zstd can ask for 770 MiB. The metadata are FlatBuffers (``Message.fbs``, ``File.fbs`` of the
Arrow format); only the few fields needed here are read, each offset checked against the buffer
it points into, so a corrupted body is a ValueError, never a read past its end.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pyarrow as pa

DICTIONARY_BATCH, RECORD_BATCH = 2, 3  # MessageHeader union members
FILE_MAGIC = b"ARROW1"
_BUFFER = struct.Struct("<qq")  # Buffer: offset, length
_BLOCK = struct.Struct("<qi4xq")  # Block: offset, metaDataLength, (padding), bodyLength


def _unpack(fmt: str, data: bytes, at: int) -> int:
    size = struct.calcsize(fmt)
    if at < 0 or at + size > len(data):
        raise ValueError(f"an offset points outside the metadata ({at} of {len(data)} bytes)")
    return int(struct.unpack_from(fmt, data, at)[0])


class _Table:
    """A FlatBuffers table: a signed offset to its vtable, which holds each field's offset."""

    def __init__(self, data: bytes, at: int) -> None:
        self.data, self.at = data, at
        self.vtable = at - _unpack("<i", data, at)
        self.vtable_size = _unpack("<H", data, self.vtable)

    def _field(self, index: int) -> int | None:
        slot = 4 + 2 * index
        if slot + 2 > self.vtable_size:
            return None
        offset = _unpack("<H", self.data, self.vtable + slot)
        return self.at + offset if offset else None

    def scalar(self, index: int, fmt: str, default: int = 0) -> int:
        at = self._field(index)
        return default if at is None else _unpack(fmt, self.data, at)

    def table(self, index: int) -> _Table | None:
        at = self._field(index)
        return None if at is None else _Table(self.data, at + _unpack("<I", self.data, at))

    def structs(self, index: int, shape: struct.Struct) -> Iterator[tuple[int, ...]]:
        at = self._field(index)
        if at is None:
            return
        vector = at + _unpack("<I", self.data, at)
        count = _unpack("<I", self.data, vector)
        if vector + 4 + count * shape.size > len(self.data):
            raise ValueError(f"a vector of {count} entries runs past the metadata")
        for i in range(count):
            yield shape.unpack_from(self.data, vector + 4 + i * shape.size)


def _root(data: bytes) -> _Table:
    return _Table(data, _unpack("<I", data, 0))


def message_size(metadata: bytes, body: pa.Buffer | bytes) -> int:
    """Decoded bytes of one IPC message: the sum of its buffers' lengths, a compressed buffer
    counted at the length it declares."""
    message = _root(metadata)
    kind = message.scalar(1, "<B")
    header = message.table(2)
    if header is None or kind not in (RECORD_BATCH, DICTIONARY_BATCH):
        return 0  # a schema (or nothing): no buffers
    batch = header.table(1) if kind == DICTIONARY_BATCH else header
    if batch is None:
        return 0
    compressed = batch.table(3) is not None
    total = 0
    for offset, length in batch.structs(2, _BUFFER):
        if offset < 0 or length < 0 or offset + length > len(body):
            raise ValueError(f"a buffer ({offset}+{length}) lies outside the message body "
                             f"({len(body)} bytes)")
        if compressed and length >= 8:
            declared = _unpack("<q", bytes(body[offset:offset + 8]), 0)
            total += length - 8 if declared == -1 else declared
        else:
            total += length
        if total < 0:
            raise ValueError("a buffer declares a negative length")
    return total


def stream_size(body: bytes) -> int:
    """Decoded bytes of an Arrow IPC stream."""
    import pyarrow.ipc as ipc

    total = 0
    for message in ipc.MessageReader.open_stream(pa.BufferReader(body)):
        total += message_size(message.metadata.to_pybytes(), message.body or b"")
    return total


def file_size(body: bytes) -> int:
    """Decoded bytes of the batches an Arrow IPC file's footer lists (what a reader reads)."""
    import pyarrow.ipc as ipc

    if len(body) < 2 * len(FILE_MAGIC) + 4 or body[-len(FILE_MAGIC):] != FILE_MAGIC:
        raise ValueError("not an Arrow IPC file (no trailing magic)")
    footer_end = len(body) - len(FILE_MAGIC) - 4
    length = _unpack("<i", body, footer_end)
    if length <= 0 or length > footer_end:
        raise ValueError(f"a footer of {length} bytes does not fit the file")
    footer = _root(body[footer_end - length:footer_end])
    view = pa.py_buffer(body)
    total = 0
    for index in (2, 3):  # dictionaries, record batches
        for offset, meta_length, body_length in footer.structs(index, _BLOCK):
            end = offset + meta_length + body_length
            if offset < 0 or meta_length < 0 or body_length < 0 or end > len(body):
                raise ValueError(f"a block ({offset}+{meta_length}+{body_length}) lies outside "
                                 f"the file")
            message = ipc.read_message(view[offset:end])
            total += message_size(message.metadata.to_pybytes(), message.body or b"")
    return total

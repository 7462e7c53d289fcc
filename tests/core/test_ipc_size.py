"""The decoded size of an Arrow IPC body, read from its metadata before anything is
decompressed: equal to what pyarrow allocates when it reads the body (property-tested over
tables, compressions and both IPC formats), and a decompression bomb refused by the push parser
before a byte of it is decoded."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.ipc as ipc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifecycled.api import parse_body
from lifecycled.core.ipc_size import file_size, stream_size
from lifecycled.errors import SourceError

STREAM, FILE = "application/vnd.apache.arrow.stream", "application/vnd.apache.arrow.file"


def encode(table: pa.Table, compression: str | None, media: str, chunk: int = 64) -> bytes:
    sink = pa.BufferOutputStream()
    options = ipc.IpcWriteOptions(compression=compression)
    opener = ipc.new_stream if media == STREAM else ipc.new_file
    with opener(sink, table.schema, options=options) as writer:
        writer.write_table(table, max_chunksize=chunk)
    return sink.getvalue().to_pybytes()


def allocated(table: pa.Table) -> int:
    """Bytes of every buffer of a table read back (a dictionary the batches share, once)."""
    seen: set[tuple[int, int]] = set()
    for column in table.columns:
        for chunk in column.chunks:
            arrays = [chunk]
            if isinstance(chunk, pa.DictionaryArray):
                arrays = [chunk.indices, chunk.dictionary]
            seen.update((b.address, b.size) for a in arrays for b in a.buffers() if b is not None)
    return sum(size for _, size in seen)


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    rows = draw(st.integers(0, 300))
    text = st.one_of(st.none(), st.text(max_size=30))
    columns = {
        "n": pa.array(draw(st.lists(st.one_of(st.none(), st.integers(-2**40, 2**40)),
                                    min_size=rows, max_size=rows)), pa.int64()),
        "s": pa.array(draw(st.lists(text, min_size=rows, max_size=rows)), pa.string()),
        "x": pa.array(draw(st.lists(st.floats(allow_nan=True), min_size=rows, max_size=rows))),
    }
    if draw(st.booleans()):
        columns["d"] = pa.array(draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=rows,
                                              max_size=rows))).dictionary_encode()
    return pa.table(columns)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(tables(), st.sampled_from([None, "zstd", "lz4"]), st.sampled_from([STREAM, FILE]))
@pytest.mark.slow
def test_the_size_read_from_metadata_is_what_reading_allocates(
        table: pa.Table, compression: str | None, media: str) -> None:
    body = encode(table, compression, media)
    size = (stream_size if media == STREAM else file_size)(body)
    read = (ipc.open_stream(body).read_all() if media == STREAM
            else ipc.open_file(body).read_all())
    assert size == allocated(read)
    # the same whether or not the body is compressed
    assert size == (stream_size if media == STREAM else file_size)(encode(table, None, media))


@pytest.mark.parametrize("media", [STREAM, FILE])
def test_a_decompression_bomb_is_refused_before_it_is_decoded(media: str) -> None:
    """64 MiB of zeros compress to a few kilobytes; pyarrow allocated the whole of it to read
    the batch, and the old bound was checked only after. Now the parser refuses the body from
    its metadata and the memory pool it reads with never holds more than the body's own size."""
    bomb = pa.table({"blob": pa.array([b"\0" * (64 * 2**20)], pa.binary())})
    body = encode(bomb, "zstd", media)
    assert len(body) < 2**20
    pool = pa.proxy_memory_pool(pa.default_memory_pool())
    with pytest.raises(SourceError, match=r"decodes to 671088\d\d bytes, more than the 8388608"):
        parse_body("POST", body, media, decoded_limit=8 * 2**20, memory_pool=pool)
    assert pool.max_memory() < 2**20
    # under the limit the same body is read, through the same pool
    table = parse_body("POST", body, media, decoded_limit=128 * 2**20, memory_pool=pool)
    assert table.column("blob")[0].as_py() == b"\0" * (64 * 2**20)
    assert pool.max_memory() >= 64 * 2**20
    del table  # before the pool it was allocated from (pyarrow does not keep the pool alive)
    assert pool.bytes_allocated() == 0

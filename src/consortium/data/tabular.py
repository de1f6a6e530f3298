"""CSV and Parquet: profile in a stream (bounded memory), load whole (for compute), read a preview.

A ``Source`` is a callable returning a fresh iterator over the file's plaintext bytes (the blob,
decrypted as it is read), so a second pass is possible, e.g. to name the line of a ragged row.

>>> src = lambda: iter([b"a,b,label\\n1,2.5,x\\n3,,y\\n"])
>>> s = profile_csv(src, target="label")
>>> [(c["name"], c["type"], c["missing"]) for c in s["columns"]], s["classes"]
([('a', 'integer', 0), ('b', 'float', 1), ('label', 'string', 0)], {'x': 1, 'y': 1})
>>> load_csv(src, s).frame.shape
(2, 3)
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.csv as pacsv

from consortium.data.profile import POOL, TableProfiler, arrow_type, check_columns
from consortium.data.streams import IterReader, Utf8Check
from consortium.errors import InvalidInput

if TYPE_CHECKING:  # pandas is imported only when rows are loaded, not to profile an upload
    from consortium.data.frame import DataFrameSet

Source = Callable[[], Iterable[bytes]]
HEADER_MAX = 1 << 20  # bytes searched for the end of the header line
# pyarrow's streaming CSV reader reads up to 32 blocks ahead on an I/O thread, whatever the block
# size: 1 MiB blocks kept about 35 MB of raw text in flight during an upload. 128 KiB blocks keep
# 4 MB; their batches are joined into ~1 MiB batches for profiling, which keeps the per-batch
# Python cost near that of 1 MiB blocks (profiling CPU +10%; 64 KiB blocks: +20% for no lower
# peak; bench/bench_upload.py).
BLOCK = 128 << 10
GROUP = 1 << 20
# One I/O thread reads every CSV stream ahead: each extra thread that calls into Python to read
# gets its own glibc arena (about 8 MB more resident), and one stream needs no more.
pa.set_io_thread_count(1)


# --------------------------------------------------------------------------- CSV
def _header(chunks: Iterator[bytes]) -> tuple[list[str], bytes]:
    """The header's column names, and the bytes read so far (to be replayed to the parser)."""
    head = b""
    for c in chunks:
        head += c
        if b"\n" in head or len(head) > HEADER_MAX:
            break
    line = head.split(b"\n", 1)[0]
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("the file is not valid UTF-8: undecodable byte on line 1",
                           hint="save the file as UTF-8 and upload it again") from None
    names = next(csv.reader([text.rstrip("\r")]), [])
    if not names or names == [""]:
        raise InvalidInput("the CSV file has no header line", hint="put the column names on line 1")
    return names, head


def _opened(source: Source, types: dict[str, pa.DataType] | None, target: str | None,
            block: int | None = None) -> tuple[Any, Utf8Check, list[str]]:
    it = iter(source())
    names, head = _header(it)
    check_columns(names, target)
    checked = Utf8Check(_replay(head, it), what="the CSV file")
    col_types = types or {n: pa.string() for n in names}
    try:
        reader = pacsv.open_csv(
            IterReader(checked),
            read_options=pacsv.ReadOptions(block_size=block or BLOCK, use_threads=False),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types=col_types, strings_can_be_null=True),
            memory_pool=POOL)
    except (pa.ArrowException, OSError, InvalidInput) as e:
        raise _csv_error(e, checked, source) from None
    return reader, checked, names


def _replay(head: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield head
    yield from rest


def _csv_error(e: Exception, checked: Utf8Check, source: Source) -> InvalidInput:
    if checked.error is not None:
        return checked.error
    msg = str(e)
    if "Expected" in msg and "columns" in msg:
        return _ragged_line(source) or InvalidInput(f"the CSV file is ragged: {msg}")
    if "conversion error" in msg.lower() and "utf8" in msg.lower():
        return InvalidInput("the CSV file is not valid UTF-8", hint="save it as UTF-8")
    return InvalidInput(f"the CSV file cannot be parsed: {msg.split(':', 1)[-1].strip()[:300]}",
                        hint="check quoting and separators (a comma-separated file with a header)")


def _ragged_line(source: Source) -> InvalidInput | None:
    """Second pass, only on failure: find the first row whose field count differs from the header's."""
    text = io.TextIOWrapper(io.BufferedReader(IterReader(source())), encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    width = len(next(reader, []))
    for row in reader:
        if row and len(row) != width:
            return InvalidInput(f"the CSV file is ragged: line {reader.line_num} has {len(row)} fields "
                                f"but the header has {width}",
                                hint="every row needs one value per column (quote values containing commas)")
    return None


def profile_csv(source: Source, target: str | None) -> dict[str, Any]:
    """Schema and statistics of a CSV file, read once as a stream."""
    reader, checked, names = _opened(source, None, target)
    prof = TableProfiler(names, target, typed=False)
    try:
        for group in _grouped(reader):
            prof.add(group)
    except (pa.ArrowException, OSError, InvalidInput) as e:
        raise _csv_error(e, checked, source) from None
    return prof.result()


def _grouped(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Small record batches joined into batches of about ``GROUP`` bytes (one contiguous copy), so
    that the per-batch cost of profiling does not grow as the read blocks shrink."""
    group: list[pa.RecordBatch] = []
    size = 0
    for b in batches:
        group.append(b)
        size += b.nbytes
        if size >= GROUP:
            yield pa.concat_batches(group, memory_pool=POOL)
            group, size = [], 0
    if group:
        yield pa.concat_batches(group, memory_pool=POOL)


def _csv_types(schema: dict[str, Any]) -> dict[str, pa.DataType]:
    return {c["name"]: arrow_type(c["type"]) for c in schema["columns"]}


def load_csv(source: Source, schema: dict[str, Any]) -> DataFrameSet:
    from consortium.data.frame import DataFrameSet

    reader, checked, _ = _opened(source, _csv_types(schema), None, block=1 << 20)  # all in memory anyway
    try:
        table = reader.read_all()
    except (pa.ArrowException, OSError, InvalidInput) as e:
        raise _csv_error(e, checked, source) from None
    return DataFrameSet.from_frame(table.to_pandas(), target=schema.get("target"))


def head_csv(source: Source, schema: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """The first ``n`` rows, reading no more of the file than needed."""
    reader, _, _ = _opened(source, _csv_types(schema), None)
    rows: list[dict[str, Any]] = []
    for batch in reader:
        rows.extend(batch.slice(0, n - len(rows)).to_pylist())
        if len(rows) >= n:
            break
    return rows


# --------------------------------------------------------------------------- Parquet
def _parquet(path: Path) -> Any:  # a pyarrow.parquet.ParquetFile (pyarrow ships no types)
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        raise InvalidInput(f"the file is not a readable Parquet file: {e}",
                           hint="write it with pandas.DataFrame.to_parquet or pyarrow") from None


def profile_parquet(path: Path, target: str | None) -> dict[str, Any]:
    pf = _parquet(path)
    names = list(pf.schema_arrow.names)
    prof = TableProfiler(names, target, typed=True)
    try:
        for batch in pf.iter_batches(batch_size=65536):
            prof.add(batch)
    except (pa.ArrowException, OSError) as e:
        raise InvalidInput(f"the Parquet file is damaged: {e}") from None
    return prof.result()


def load_parquet(path: Path, schema: dict[str, Any]) -> DataFrameSet:
    from consortium.data.frame import DataFrameSet

    return DataFrameSet.from_frame(_parquet(path).read().to_pandas(), target=schema.get("target"))


def head_parquet(path: Path, n: int) -> list[dict[str, Any]]:
    for batch in _parquet(path).iter_batches(batch_size=max(n, 1)):
        rows: list[dict[str, Any]] = batch.slice(0, n).to_pylist()
        return rows
    return []

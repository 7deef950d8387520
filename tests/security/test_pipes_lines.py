"""Readers of pipes and sockets: lines and requests have a byte limit and are read in linear time."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import pytest

from agent_runner.core.errors import ExecutorError
from agent_runner.executors.fork.child import LineReader, LineTooLong, read_request

CHUNK = 65536
BIG = 50 * 1024 * 1024


def test_lines_are_split_across_chunks() -> None:
    """Lines come out whole whatever the chunking; a partial line waits for its newline."""
    reader = LineReader(limit=100)
    assert reader.feed(b"ab") == []
    assert reader.feed(b"c\nde\n\nf") == [b"abc", b"de", b""]
    assert reader.feed(b"g\n") == [b"fg"]
    assert reader.pending == 0


def test_an_over_limit_line_is_refused_at_the_limit_and_skipped() -> None:
    """A 50 MB line without a newline is refused as it passes the limit, none of it kept; the next is fine."""
    limit = 1 << 20
    reader = LineReader(limit=limit)
    n_fed, refused = 0, []
    while n_fed < BIG:
        found = reader.feed(b"x" * CHUNK)
        n_fed += CHUNK
        refused += [(n_fed, item) for item in found]
        assert reader.pending <= limit  # the line so far is held only while it may still be valid
    ((at, error),) = refused
    assert isinstance(error, LineTooLong) and at == limit + CHUNK and str(limit) in str(error)
    assert reader.pending == 0
    assert reader.feed(b"xx\n{}\n") == [b"{}"]  # the rest of the long line is dropped with its newline


def test_a_long_line_inside_one_chunk_is_refused() -> None:
    """An over-limit line that arrives whole, between valid ones, is refused on its own."""
    found = LineReader(limit=10).feed(b"ok\n" + b"y" * 11 + b"\nfine\n" + b"z" * 10 + b"\n")
    assert found[0] == b"ok" and isinstance(found[1], LineTooLong) and found[2:] == [b"fine", b"z" * 10]


def test_read_request_stops_at_the_limit(tmp_path: Path) -> None:
    """A 50 MB request on a pipe is refused after limit + 1 bytes; the rest stays unread."""
    read_fd, write_fd = os.pipe()
    n_written = 0

    def write() -> None:
        nonlocal n_written
        try:
            while n_written < BIG:
                n_written += os.write(write_fd, b"x" * CHUNK)
        except BrokenPipeError:
            return
        finally:
            os.close(write_fd)

    writer = threading.Thread(target=write)
    writer.start()
    with os.fdopen(read_fd, "rb") as stream, pytest.raises(ExecutorError, match="over 1048576 bytes"):
        read_request(stream, limit=1 << 20)
    writer.join()
    assert n_written < 4 << 20  # the writer met a closed pipe long before 50 MB


def test_read_request_returns_a_request_within_the_limit() -> None:
    """A request up to the limit is returned whole."""
    assert read_request(io.BytesIO(b"x" * 100), limit=100) == b"x" * 100

"""`vm logs` to a file or a pipe leaves the guest's terminal escape codes out (issue 23,
item 6), even when a code is cut between two chunks of the stream."""

from __future__ import annotations

import pytest

from virshle_core.cli.render import EscapeStripper

STREAM = b"/ # \x1b[6nready\x1b[1;32m green\x1b[0m \x1b]0;title\x07done\x1b\\ \x1b(B.\n"


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, len(STREAM)])
def test_codes_are_left_out_whatever_the_chunks(size):
    stripper = EscapeStripper()
    out = b"".join(stripper.feed(STREAM[i:i + size]) for i in range(0, len(STREAM), size))
    assert out == b"/ # ready green done .\n"

"""The progress line of a long move, as a person sees it at 80 columns: the running sum of
what moved (it showed each 64 KiB chunk, "0.0% 64KiB of 1.1GiB", for the whole move), a
few drawings a second (it drew for every chunk: 1.3 MB of terminal output for 1 GiB), and
never wider than the terminal."""

from __future__ import annotations

import io

from virshle_core.cli import actions
from virshle_core.client.migrate import tally


def test_a_pipe_s_chunks_are_summed():
    seen = []
    count = tally(lambda what, done, total: seen.append((what, done, total)), "files", 300)
    for size in (100, 100, 100):
        count(size)
    assert seen == [("files", 100, 300), ("files", 200, 300), ("files", 300, 300)]


def test_the_line_is_drawn_a_few_times_a_second_within_80_columns(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(actions.sys, "stderr", err)
    monkeypatch.setenv("COLUMNS", "80")
    line = actions.ProgressLine(delay=0)
    line.enabled = True
    total = 1024 ** 4
    for done in range(0, total, total // 10000):  # a burst of 10,000 reports
        line.update("files", done, total)
    line.update("files", total, total)
    drawn = [d for d in err.getvalue().split("\r") if d]
    assert 1 <= len(drawn) <= 20 and "100.0%" in drawn[-1]  # the end is always drawn
    assert max(len(d) for d in drawn) <= 79

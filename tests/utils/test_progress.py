"""``utils.progress``: log lines every ~10 % off a terminal, a rich bar on one, nothing when quiet;
the trainer callback reports steps; ``utils.heap`` keeps outputs unchanged."""

from __future__ import annotations

import io
import logging
import os
import re
import sys

import pytest

from eno_hf.utils import progress as P


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def info_logs(caplog, monkeypatch):
    monkeypatch.delenv(P.ENV_VAR, raising=False)
    monkeypatch.setenv("ENO_LOG_LEVEL", "INFO")
    monkeypatch.setattr("eno_hf.utils.logs._explicit", None, raising=False)
    caplog.set_level(logging.INFO, logger="eno_hf")
    return caplog


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == P.LOGGER_NAME]


def test_mode_follows_tty_quiet_and_env(monkeypatch):
    monkeypatch.delenv(P.ENV_VAR, raising=False)
    monkeypatch.setenv("ENO_LOG_LEVEL", "INFO")
    monkeypatch.setattr("eno_hf.utils.logs._explicit", None, raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert P.progress_mode() == "log"
    assert P.progress_mode(enabled=False) == "off"
    monkeypatch.setattr(sys, "stderr", _Tty())
    assert P.progress_mode() == "bar"
    monkeypatch.setenv(P.ENV_VAR, "log")
    assert P.progress_mode() == "log"
    monkeypatch.setenv(P.ENV_VAR, "off")
    assert P.progress_mode() == "off"
    monkeypatch.delenv(P.ENV_VAR)
    monkeypatch.setenv("ENO_LOG_LEVEL", "WARNING")  # eno -q
    assert P.progress_mode() == "off"


def test_log_mode_writes_a_line_every_ten_percent_and_one_at_the_end(info_logs, monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal: a worker log
    out = list(P.track(range(50), description="4q: processing", unit="file"))
    assert out == list(range(50))
    lines = _lines(info_logs)
    progress_lines = [x for x in lines if "%" in x]
    assert len(progress_lines) == 9  # 10 % .. 90 %; 100 % is the final line
    first = progress_lines[0]
    assert re.match(r"4q: processing: 5/50 files \(10 %\), .+, elapsed \d+ s, ETA \d+ s", first), first
    assert re.match(r"4q: processing: 50 files in \d+ s \(", lines[-1]), lines[-1]
    assert len(lines) == 10


def test_log_mode_unknown_total_and_small_totals(info_logs, monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    list(P.track(iter(range(3)), description="tagging", unit="file"))  # no len(): total unknown
    assert _lines(info_logs)[-1].startswith("tagging: 3 files in ")
    info_logs.clear()
    list(P.track(range(3), description="writing", unit="split"))
    lines = _lines(info_logs)
    assert len(lines) == 3
    assert lines[0].startswith("writing: 1/3 splits (33 %)") and lines[1].startswith("writing: 2/3 splits (67 %)")
    assert lines[2].startswith("writing: 3 splits in ")


def test_quiet_and_disabled_show_nothing(info_logs, monkeypatch):
    stderr = _Tty()
    monkeypatch.setattr(sys, "stderr", stderr)
    list(P.track(range(10), description="x", enabled=False))
    monkeypatch.setenv("ENO_LOG_LEVEL", "WARNING")
    list(P.track(range(10), description="x"))
    assert _lines(info_logs) == [] and stderr.getvalue() == ""


def test_a_failure_writes_no_final_line(info_logs, monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())

    def boom():
        yield 1
        raise RuntimeError("bad file")

    with pytest.raises(RuntimeError):
        list(P.track(boom(), total=10, description="x"))
    assert not any(" in " in x for x in _lines(info_logs))


def test_bar_mode_draws_on_stderr_and_nests(info_logs, monkeypatch):
    stderr = _Tty()
    monkeypatch.setattr(sys, "stderr", stderr)
    with P.Progress(4, "outer", "shard") as outer:
        assert outer.mode == "bar"
        for _ in P.track(range(3), description="inner", unit="segment"):  # a second bar inside: no LiveError
            pass
        outer.advance(4)
    assert P._shared_bar is None  # the live display is stopped when the last user closes
    assert "outer" in stderr.getvalue()
    assert [x.split(":")[0] for x in _lines(info_logs)] == ["inner", "outer"]  # one summary line each


def test_trainer_callback_reports_steps(info_logs, monkeypatch):
    from types import SimpleNamespace

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    cb = P.trainer_progress_callback("training")
    args = SimpleNamespace(num_train_epochs=2, max_steps=-1)
    state = SimpleNamespace(is_local_process_zero=True, max_steps=20, global_step=0, epoch=0.0, num_train_epochs=2)
    cb.on_train_begin(args, state, None)
    for step in range(1, 21):
        if step in (1, 11):
            state.epoch = (step - 1) / 10
            cb.on_epoch_begin(args, state, None)
        state.global_step = step
        cb.on_step_end(args, state, None)
    cb.on_train_end(args, state, None)
    lines = _lines(info_logs)
    assert any(x.startswith("training (epoch 2/2): 12/20 steps (60 %)") for x in lines), lines
    assert lines[-1].startswith("training: 20 steps in ")


def test_reuse_freed_memory_keeps_results_and_nests():
    import numpy as np
    import torch

    from eno_hf.utils.heap import reuse_freed_memory

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(1, 8, (9, 3)).eval()
    x = torch.randn(4, 1, 64, 200)
    with torch.no_grad():
        ref = conv(x).numpy()
        with reuse_freed_memory() as active, reuse_freed_memory():
            again = [conv(x).numpy() for _ in range(3)]
    assert isinstance(active, bool)
    assert all(np.array_equal(a, ref) for a in again)


def test_a_line_written_while_a_decoder_captures_stderr_is_not_a_decoder_note(capfd, monkeypatch):
    """Decoding redirects fd 2 to collect what C decoders print; eno's own stderr writers (the bar's
    console, the log handler) wait for it instead of writing into that file's notes."""
    import threading
    import time

    from eno_hf.audio.io import _captured_stderr

    monkeypatch.setattr(sys, "stderr", open(2, "w", closefd=False, buffering=1))  # a real fd-2 stderr
    notes: list[str] = []
    started = threading.Event()

    def decode():
        with _captured_stderr(notes):
            started.set()
            time.sleep(0.5)
            os.write(2, b"mpg123: Illegal Audio-MPEG-Header\n")  # what a C decoder prints

    t = threading.Thread(target=decode)
    t.start()
    started.wait(5)
    P.LockedStderr().write("4q: processing: 36/360 files (10 %)\n")
    t.join()
    assert notes == ["mpg123: Illegal Audio-MPEG-Header"]
    assert "36/360 files" in capfd.readouterr().err

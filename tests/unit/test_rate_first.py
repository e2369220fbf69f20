"""RateFirst stops a notebook's Run All with its message alone, no traceback."""
from __future__ import annotations

from IPython.core.interactiveshell import InteractiveShell

from aliqa_lib.evaluation.collection import NotEnoughRatings, RateFirst


def test_rate_first_shows_only_its_message_in_ipython(capsys):
    shell = InteractiveShell()
    shell.user_ns.update(RateFirst=RateFirst, NotEnoughRatings=NotEnoughRatings)
    result = shell.run_cell("raise RateFirst('rate at least 5 more images in the panel above')")
    assert isinstance(result.error_in_exec, NotEnoughRatings)     # the cell fails, so Run All stops there
    out = capsys.readouterr()
    shown = out.out + out.err
    assert "rate at least 5 more images in the panel above" in shown and "Traceback" not in shown
    shell.run_cell("raise NotEnoughRatings('x')")                   # the plain error keeps its traceback
    out = capsys.readouterr()
    assert "Traceback" in out.out + out.err

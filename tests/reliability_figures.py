"""Figures the reliability tests measure, written where scripts/reliability_report.py reads them.

Why a file per test: tests run in any order and subset; the report sums what was measured, never a constant.
"""
from __future__ import annotations

import json
import os
import pathlib
import time

FIGURES = pathlib.Path(os.environ.get("RELIABILITY_FIGURES",
                                      pathlib.Path(__file__).resolve().parent.parent / "build" / "reliability"))


def record(test: str, **figures) -> None:
    FIGURES.mkdir(parents=True, exist_ok=True)
    (FIGURES / f"{test}.json").write_text(json.dumps({"test": test, "at": time.time(), **figures}, indent=1))

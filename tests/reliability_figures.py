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


def record_attack(test: str, *, attack: str, load: str, phone_s_without: float, phone_s_with: float,
                  store_before: dict, store_after: dict, **details) -> None:
    """One attack's row of docs/reliability.md's fair-shares table, and its details below it.

    Args:
        attack: what was done, in a few words ("TFTP timeout=255 flood").
        load: the load the station held meanwhile, as measured ("200 sessions from 26 addresses").
        phone_s_without, phone_s_with: the genuine phone's seconds from power-on to its target, the same phone and
            station alone (the baseline) and under the attack.
        store_before, store_after: the store's size (tests/reliability_station.store_size: bytes, and rows of
            events, transfers, phones) when the attack began and after it.
        details: anything else the test measured (shown whole).
    """
    record(test, kind="attack", attack=attack, load=load,
           phone_s={"without_attack": round(phone_s_without, 1), "with_attack": round(phone_s_with, 1)},
           store={"before": store_before, "after": store_after}, **details)

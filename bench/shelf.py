"""What is on the bench's shelf: which phones of which model, the load each runs and the load it must end on.

bench/fleet.py runs two shelves: the 50 7965s whose figures are compared across
commits (FLEET), and a mixed shelf (MIXED) of the families the station serves
since issue 26: 7965s through the 8.5(2) stone, 7841s of both platforms, a
6921 and an 8945, each straight to its target.  The load IDs are the ones the
end-to-end tests use (tests/test_recovery_families_netns.py,
tests/test_phonesim_families_netns.py); the station's library holds each
family's target (and the 7965s' stone), written by appliance.firmware.synth.

A shelf is laid out once (`layout`): every phone gets a MAC index, the same
for bench/fleet_phones.py (which boots it) and for the hand-made configs
bench/fleet.py writes per MAC.  From a fleet's phone results (each with its
`target_s`: seconds from power-on until it ran its target) `model_times` gives
the last phone of each model, and `transports` counts how each model's files
came (from the phones' own timelines).
"""
from __future__ import annotations

from dataclasses import dataclass

STONE, TARGET, START_LOAD = "SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S", "SCCP45.8-3-1S"
OLD_78, TARGET_78 = "sip78xx.11-0-1-11", "sip78xx.12-5-1SR3-74"
OLD_69, TARGET_69 = "SCCP69xx.9-3-1-3", "SCCP69xx.9-4-1-3SR3"
OLD_894, TARGET_894 = "SCCP894x.9-4-2SR1-2", "SCCP894x.9-4-2SR3-1"
MAC_SEED = 0x42          # bench/fleet_phones.py --seed: 00:1e:7a:42:<index>


@dataclass(frozen=True)
class Group:
    """Phones of one model: how many (full run, --quick), the load they run at power-on, the load they must
    end on, the stepping stone they take first (by hand: a round of its own before the tech's swap), and
    the [PLATFORM_n] a 7800 fetches."""
    model: str
    count: int
    quick: int
    current: str
    target: str
    stone: str | None = None
    platform: int = 1

    @property
    def label(self) -> str:
        """"CP-7965G" -> "7965": the row a model gets in the report (a 7841's platforms share one)."""
        return self.model.removeprefix("CP-").rstrip("G")


FLEET = (Group("CP-7965G", 50, 5, START_LOAD, TARGET, STONE),)
MIXED = (Group("CP-7965G", 40, 2, START_LOAD, TARGET, STONE),
         Group("CP-7841", 4, 1, OLD_78, TARGET_78, platform=1),
         Group("CP-7841", 4, 1, OLD_78, TARGET_78, platform=2),
         Group("CP-6921", 1, 1, OLD_69, TARGET_69),
         Group("CP-8945", 1, 1, OLD_894, TARGET_894))


@dataclass(frozen=True)
class Phone:
    index: int
    mac: str
    group: Group


def mac_of(index: int, seed: int = MAC_SEED) -> str:
    """As bench/fleet_phones.py mac_of: 00:1e:7a:<seed>:<index>."""
    return bytes((0x00, 0x1E, 0x7A, seed, index >> 8 & 0xFF, index & 0xFF)).hex()


def layout(shelf: tuple[Group, ...], quick: bool) -> list[Phone]:
    """Every phone of the shelf with its MAC index, groups in order, indices from 0 without gaps."""
    phones: list[Phone] = []
    for g in shelf:
        for _ in range(g.quick if quick else g.count):
            phones.append(Phone(len(phones), mac_of(len(phones)), g))
    return phones


def groups_arg(phones: list[Phone], current: dict[Group, str] | None = None) -> list[dict]:
    """bench/fleet_phones.py --shelf for these phones (consecutive indices of one group make one entry);
    `current` replaces a group's power-on load (by hand, round two starts on the stone)."""
    out: list[dict] = []
    for p in phones:
        last = out[-1] if out else None
        if last and last["_group"] is p.group and last["first"] + last["count"] == p.index:
            last["count"] += 1
            continue
        out.append({"_group": p.group, "model": p.group.model, "count": 1, "first": p.index,
                    "current": (current or {}).get(p.group, p.group.current), "platform": p.group.platform})
    return [{k: v for k, v in g.items() if k != "_group"} for g in out]


def library(shelf: tuple[Group, ...]) -> list[str]:
    """The loads the station's library holds for this shelf: every stone and target, each once."""
    loads: list[str] = []
    for g in shelf:
        for load in (g.stone, g.target):
            if load and load not in loads:
                loads.append(load)
    return loads


def label_counts(phones: list[Phone]) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in phones:
        out[p.group.label] = out.get(p.group.label, 0) + 1
    return out


def model_times(results: list[dict], phones: list[Phone]) -> dict[str, float | None]:
    """{label: seconds until the last phone of that model ran its target}; None when one of them never did
    (or did not report)."""
    by_mac = {r["mac"]: r for r in results}
    out: dict[str, float | None] = {}
    for p in phones:
        t = (by_mac.get(p.mac) or {}).get("target_s")
        prev = out.get(p.group.label, 0.0)
        out[p.group.label] = None if t is None or prev is None else max(prev, t)
    return out


def transports(rounds: list[dict[str, dict]], phones: list[Phone]) -> dict[str, dict[str, int]]:
    """{label: {"http": files received over HTTP, "tftp": over TFTP, "http_refused": HTTP requests that got
    nothing}} over every round's timelines ({mac: bench/fleet_phones.py --timeline line}; by hand a 7965
    has two rounds)."""
    label = {p.mac: p.group.label for p in phones}
    out: dict[str, dict[str, int]] = {}
    for mac, rec in ((mac, rec) for timelines in rounds for mac, rec in timelines.items()):
        if mac not in label:
            continue
        row = out.setdefault(label[mac], {"http": 0, "tftp": 0, "http_refused": 0})
        for span in rec.get("spans", []):
            if span.get("kind") != "fetch":
                continue
            via = span.get("via")
            if span.get("ok") and via in ("http", "tftp"):
                row[via] += 1
            elif via == "http":
                row["http_refused"] += 1
    return out

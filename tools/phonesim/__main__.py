"""`python -m tools.phonesim`: model phones on an interface (DHCP) or against a TFTP server; one JSON line each.

Flags mirror `appliance simulate` (--interface, --server, --port, --count, --model,
--load, --trust-list, --first-mac, --deadline, --reboot-seconds, --web-port) so a
caller can switch over by changing the module, plus the behaviours only this
model has.
"""
from __future__ import annotations

import argparse
import json
import sys

from . import floors
from .phone import SimPhone, run_fleet

MAX_PHONES = 500


def parser(**kw) -> argparse.ArgumentParser:
    """The flags; keyword arguments go to ArgumentParser (`appliance simulate` takes it as a parent with
    add_help=False)."""
    p = argparse.ArgumentParser(**{"prog": "python -m tools.phonesim", "description": __doc__.split("\n")[0], **kw})
    p.add_argument("--interface", help="do DHCP on this interface (inside a namespace)")
    p.add_argument("--server", help="no DHCP: a fixed lease on 127.0.0.1 naming this TFTP/HTTP server")
    p.add_argument("--port", type=int, default=69, help="TFTP port")
    p.add_argument("--http-port", type=int, default=6970)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--model", default="7965")
    p.add_argument("--load", default=None, help="load the phone runs (factory reset: ran before the reset)")
    p.add_argument("--trust-list", "--itl", dest="itl", action="store_true", help="holds another cluster's ITL")
    p.add_argument("--factory-reset", action="store_true", help="no application: term file loop")
    p.add_argument("--no-web", action="store_true", help="web access off at power-on (7800/8800: off anyway)")
    p.add_argument("--ignore-web-access", action="store_true", help="keep web access as it is whatever the config says")
    p.add_argument("--http-first", action="store_true", default=None,
                   help="try HTTP :6970 before TFTP for every file (894x, 7800, 8800: by default)")
    p.add_argument("--tftp-only", dest="http_first", action="store_false", help="never try HTTP first")
    p.add_argument("--capitalised", action="store_true", help="TERM65.DEFAULT.LOADS, Jar45sccp...")
    p.add_argument("--leading-slash", action="store_true", help="ask for /<name>")
    p.add_argument("--hardware-floor", default=None, help="oldest load this hardware runs (Load rejected HC)")
    p.add_argument("--first-mac", type=lambda t: int(t.replace(":", ""), 16), default=0x001E7A000000)
    p.add_argument("--deadline", type=float, default=120.0)
    p.add_argument("--reboot-seconds", type=float, default=3.0)
    p.add_argument("--retry-seconds", type=float, default=5.0, help="config asked again after a refusal")
    p.add_argument("--term-retry-seconds", type=float, default=10.0)
    p.add_argument("--max-attempts", type=int, default=12, help="rounds without an install before giving up")
    p.add_argument("--linger", type=float, default=0.0, help="seconds to stay up (page served) once settled")
    p.add_argument("--web-port", type=int, default=80)
    p.add_argument("--platform", type=int, default=1, help="7800/8800: the [PLATFORM_n] the phone fetches")
    p.add_argument("--vid", default=None, help="7800/8800 hardware version (V20): its floor and its page's <udi>")
    p.add_argument("--v20-floor", choices=floors.V20_READINGS, default=floors.V20_RN,
                   help="which document's floor a V20 7821/7841/7861 keeps")
    p.add_argument("--hardware-bit", type=int, default=None,
                   help="7800/8800: refuse a manifest whose hwcompat lacks this bit (default: hwcompat ignored)")
    p.add_argument("--hardware-revision", default="1.0", help="the page's <hardwareRevision>")
    p.add_argument("--device-type", type=int, default=None, help="<loadInformationNNN> number, if not the model's")
    return p


def main(argv: list[str] | None = None) -> int:
    return run(parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Build the phones the parsed flags describe, run them, print one JSON summary line each."""
    if not (args.interface or args.server):
        print("phonesim: give --interface (DHCP) or --server (fixed lease)", file=sys.stderr)
        return 2
    n = max(1, min(args.count, MAX_PHONES))
    try:
        phones = [SimPhone(f"{args.first_mac + i + 1:012x}", args.model, args.load, web=False if args.no_web else None,
                           obey_web_access=not args.ignore_web_access, http_first=args.http_first, itl=args.itl,
                           factory_reset=args.factory_reset, capitalised=args.capitalised,
                           leading_slash=args.leading_slash, hardware_floor=args.hardware_floor,
                           web_port=args.web_port, tftp_port=args.port, http_port=args.http_port,
                           retry_s=args.retry_seconds, term_retry_s=args.term_retry_seconds,
                           reboot_s=args.reboot_seconds, platform=args.platform, vid=args.vid,
                           v20_floor=args.v20_floor, hardware_bit=args.hardware_bit,
                           hardware_revision=args.hardware_revision, device_type=args.device_type)
                  for i in range(n)]
    except ValueError as exc:
        print(f"phonesim: {exc}", file=sys.stderr)
        return 2
    for summary in run_fleet(phones, args.interface, args.server, deadline=args.deadline,
                             max_attempts=args.max_attempts, linger_s=args.linger):
        print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

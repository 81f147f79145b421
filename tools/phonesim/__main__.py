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

from . import floors, mpp, mpp_load, mpp_truth, provisioning
from .mpp_phone import MppSimPhone
from .phone import SimPhone, run_fleet

MAX_PHONES = 500


def parser(**kw) -> argparse.ArgumentParser:
    """The flags; keyword arguments go to ArgumentParser (`appliance simulate` takes it as a parent with
    add_help=False)."""
    p = argparse.ArgumentParser(**{"prog": "python -m tools.phonesim", "description": __doc__.split("\n")[0], **kw})
    p.add_argument("--interface", help="do DHCP on this interface (inside a namespace)")
    p.add_argument("--server", help="no DHCP: a fixed lease on 127.0.0.1 naming this TFTP/HTTP server")
    p.add_argument("--port", type=int, default=69, help="TFTP port")
    p.add_argument("--http-port", type=int, default=None, help="HTTP port (default 6970; --mpp: 80, a URL's own "
                                                                  "port otherwise)")
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
    m = p.add_argument_group("MPP (multiplatform) phones", "68xx, or a 7800/8800 on MPP, transition or Enterprise "
                             "firmware that converts (tools/phonesim/mpp.py); readings where the evidence is open")
    m.add_argument("--mpp", action="store_true", help="model an MPP-capable phone: profile <PSN>.xml, Upgrade_Rule, "
                                                      "licences; --load may be an MPP, transition or Enterprise load")
    m.add_argument("--user-agent-version", choices=mpp_load.UA_VERSIONS, default=mpp_load.DOTTED)
    m.add_argument("--licence-check", choices=mpp_truth.LICENCE_CHECKS, default=mpp_truth.LICENCE_NAME,
                   help="name: non-empty, named for its MAC; mac: also holds the MAC as text (a stand-in)")
    m.add_argument("--profile-order", choices=provisioning.ORDERS, default=provisioning.FILE_FIRST)
    m.add_argument("--dhcp-option-order", default=",".join(map(str, provisioning.OPTION_ORDER)),
                   help="which of 66, 160, 159, 150 names the server first")
    m.add_argument("--lease-option", action="append", default=[], metavar="CODE=TEXT",
                   help="with --server: an option of the fixed lease (default 66=<server>)")
    m.add_argument("--direct-migration", choices=mpp.DIRECT_READINGS, default=mpp.PROFILE_FIRST,
                   help="an Enterprise >= 14.0(1) phone told an MPP load: profile first or load first")
    m.add_argument("--tftp-no-slash", action="store_true", help="TFTP names without the URL's leading '/'")
    m.add_argument("--no-device-wrapper", action="store_true", help="refuse a <device> around <flat-profile>")
    m.add_argument("--raw-components", action="store_true", help="MPP components not in a signed container")
    m.add_argument("--trans-auth-type", default=None, help="Transition Authorization Type set by an earlier conversion")
    m.add_argument("--v24-bound", action="store_true", help="a 7821 above V24 cannot convert (one reading)")
    return p


def main(argv: list[str] | None = None) -> int:
    return run(parser().parse_args(argv))


def _lease_options(items: list[str]) -> dict[int, bytes] | None:
    if not items:
        return None
    out: dict[int, bytes] = {}
    for item in items:
        code, sep, text = item.partition("=")
        if not sep or not code.strip().isdigit() or not 1 <= int(code) <= 254:
            raise ValueError(f"--lease-option {item[:40]!r}: give CODE=TEXT, e.g. 160=http://10.0.0.1:6970/")
        out[int(code)] = text.encode("ascii", "replace")
    return out


def _option_order(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(c) for c in text.split(","))
    except ValueError:
        raise ValueError(f"--dhcp-option-order {text[:40]!r}: give codes such as 66,160,159,150") from None


def build(args: argparse.Namespace) -> list:
    """The phones the parsed flags describe (ValueError naming what cannot exist)."""
    n = max(1, min(args.count, MAX_PHONES))
    macs = [f"{args.first_mac + i + 1:012x}" for i in range(n)]
    if args.mpp:
        order, options = _option_order(args.dhcp_option_order), _lease_options(args.lease_option)
        return [MppSimPhone(mac, args.model, args.load, vid=args.vid, platform=args.platform, option_order=order,
                            order=args.profile_order, ua_version=args.user_agent_version,
                            licence_check=args.licence_check, tftp_slash=not args.tftp_no_slash,
                            device_wrapper=not args.no_device_wrapper, raw_components=args.raw_components,
                            direct=args.direct_migration, v24_bound=args.v24_bound, v20_floor=args.v20_floor,
                            hardware_bit=args.hardware_bit, trans_auth_type=args.trans_auth_type,
                            tftp_port=args.port, http_port=args.http_port or 80,
                            enterprise_http_port=args.http_port or 6970, retry_s=args.retry_seconds,
                            reboot_s=args.reboot_seconds, lease_options=options, web_port=args.web_port)
                for mac in macs]
    return [SimPhone(mac, args.model, args.load, web=False if args.no_web else None,
                     obey_web_access=not args.ignore_web_access, http_first=args.http_first, itl=args.itl,
                     factory_reset=args.factory_reset, capitalised=args.capitalised,
                     leading_slash=args.leading_slash, hardware_floor=args.hardware_floor,
                     web_port=args.web_port, tftp_port=args.port, http_port=args.http_port or 6970,
                     retry_s=args.retry_seconds, term_retry_s=args.term_retry_seconds,
                     reboot_s=args.reboot_seconds, platform=args.platform, vid=args.vid,
                     v20_floor=args.v20_floor, hardware_bit=args.hardware_bit,
                     hardware_revision=args.hardware_revision, device_type=args.device_type)
            for mac in macs]


def run(args: argparse.Namespace) -> int:
    """Build the phones the parsed flags describe, run them, print one JSON summary line each."""
    if not (args.interface or args.server):
        print("phonesim: give --interface (DHCP) or --server (fixed lease)", file=sys.stderr)
        return 2
    try:
        phones = build(args)
    except ValueError as exc:
        print(f"phonesim: {exc}", file=sys.stderr)
        return 2
    for summary in run_fleet(phones, args.interface, args.server, deadline=args.deadline,
                             max_attempts=args.max_attempts, linger_s=args.linger):
        print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

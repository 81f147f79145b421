"""Event kinds on the bus (the `events` table).  Producers append; the tracker and API read.

Every event is (ts, source, kind, mac, data).  `mac` is 12 lower-case hex digits
or None when unknown.  The data keys listed here are the contract between
services; producers may add more.
"""

# DHCP service (source "dhcp")
DHCP_DISCOVER = "dhcp.discover"      # ip?, vendor_class, hostname, prl, model
DHCP_OFFER = "dhcp.offer"            # ip
DHCP_ACK = "dhcp.ack"                # ip, vendor_class, hostname, prl, model
DHCP_NAK = "dhcp.nak"                # reason
DHCP_DECLINE = "dhcp.decline"        # ip
DHCP_RELEASE = "dhcp.release"        # ip
DHCP_EXHAUSTED = "dhcp.pool_exhausted"
DHCP_MALFORMED = "dhcp.malformed"    # peer, reason, size
DHCP_UNKNOWN_OPTIONS = "dhcp.unknown_options"  # codes
GUARD_STATUS = "dhcp.guard"          # status ("clear"|"refusing"|"warning"), servers [ip]

# File service (source "tftp" or "http")
FILE_REQUEST = "file.request"        # ip, file (as asked), resolved (real name or None), proto
FILE_NOT_FOUND = "file.not_found"    # ip, file, proto
FILE_REFUSED = "file.refused"        # ip, file, reason, proto
FILE_DONE = "file.done"              # ip, file, bytes, total, duration, result, proto
FILE_MALFORMED = "file.malformed"    # ip, reason

# Recovery tracker (source "tracker")
PHONE_STATE = "phone.state"          # state, step, steps, load, diagnosis
PHONE_LOAD = "phone.load"            # load, how ("step"|"option60"|"web"|"cdp"|"settled": took a config, fetched no load)
PHONE_REPORTED = "phone.reported"    # load (a load ID or None), raw, how ("web"|"cdp"): what the phone says it runs

# Firmware catalog (source "firmware")
CATALOG_CHANGED = "firmware.changed"  # loads, incomplete

# Status API writes (source "api"): requests for the owning service to act on
PHONE_RETRY = "phone.retry"            # by (requesting address); the tracker restarts the phone's plan
LEASE_FORGET = "lease.forget"          # by; a command: DHCP, the leases' owner, frees the address and deletes the row
CATALOG_RESCAN = "firmware.rescan"     # by; the file service rescans the firmware volume

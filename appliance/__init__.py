"""Cisco IP phone recovery station: DHCP, TFTP/HTTP file service, DNS and a status API over one shared store."""

__version__ = "0.1.0"

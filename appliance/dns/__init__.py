"""DNS responder (dnslib): the station's own names, NXDOMAIN or a fixed upstream for the rest."""

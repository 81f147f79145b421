"""DHCP service: sans-I/O codec and server, rogue-server guard, socket loop."""

"""Recovery tracker: stepping-stone plans, per-phone state machine, diagnosis, phone simulator."""

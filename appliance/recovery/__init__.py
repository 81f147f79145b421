"""Recovery tracker: stepping-stone plans, per-phone state machine, diagnosis; the demo (phones: tools/phonesim)."""

"""Firmware library: catalog of loads on the volume, .loads manifests, model table, generated phone configs."""

"""File service: TFTP (hardened tftpy) and HTTP :6970 over the catalog's union view plus generated files."""

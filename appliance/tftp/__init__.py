"""File service: TFTP and HTTP :6970 over the catalog's union view plus generated files.

tftpy 0.8.7 is the design card's library.  What is kept: its error-code
vocabulary and OACK/ERROR encoders (packets.py), and its client as an interop
peer in the tests.  What is replaced, and why (each reproduced against 0.8.7):
- one malformed packet ends `TftpServer.listen()` for every client: a
  non-UTF-8 name (ascii decode in the parser), `blksize=abc` (int() in the
  negotiation), an RRQ for a directory (open() raising outside its handler)
  -> packets.parse_request raises only Malformed, session.negotiate ignores
  unparseable options, paths serve regular files only, and loop.py wraps
  every packet so a bug costs that packet or that transfer;
- uploads are accepted and overwrite files -> write requests get an error
  packet and nothing is ever opened for writing;
- symlinks are followed out of the root -> paths.safe_file checks realpath
  containment for every answer;
- one select() thread and ~46 µs of CPU per block -> SO_REUSEPORT worker
  processes (service.py), precomputed DATA headers, lock-step blocks sent by
  a C pump (_pump.c, why in its header) with session.py deciding everything
  else; no database work per block (transfer_log.py).
"""

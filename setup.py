"""The one native part: the lock-step TFTP block pump (appliance/tftp/_pump.c, why is in its header).

optional=True: without a C compiler the station still installs and serves every
transfer from Python (server.py says so at start), only slower.
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension("appliance.tftp._pump", ["appliance/tftp/_pump.c"],
                             extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
                             optional=True)])

# syntax=docker/dockerfile:1
# Recovery station: DHCP, TFTP + HTTP :6970, DNS and the status API under supervisord.
# Multi-arch: docker buildx build --platform linux/amd64,linux/arm64,linux/arm/v7 (make buildx, make publish).
# Behind a TLS-intercepting proxy: --secret id=ca,src=/path/to/ca-bundle.crt (used by pip only; make image CA=...).
# BASE: another Debian 12 base for the image, e.g. a locally imported one for an emulated architecture
# (tests/test_image_arch.py); BUILD_BASE: the same for the machine that builds (the `native` stage).
ARG BASE=debian:bookworm-slim
ARG BUILD_BASE=debian:bookworm-slim

# The C parts (lldpd, the TFTP pump appliance/tftp/_pump.c) are compiled here, on the building machine's own
# architecture, with Debian's cross compiler for the image's: under qemu the same compilation took most of a
# Pi image's build (arm64 on an amd64 host, podman --no-cache, cached base: 745 s before this stage, 304 s
# with it).  For an image of the builder's own architecture the "cross" compiler is the native one.
FROM --platform=$BUILDPLATFORM ${BUILD_BASE} AS native
ARG TARGETPLATFORM
ENV DEBIAN_FRONTEND=noninteractive
# TARGETPLATFORM (set by buildx and podman from --platform; podman 4.3 leaves BUILDPLATFORM to the caller:
# the Makefile passes it; a builder that sets neither builds for its own architecture) -> Debian's
# architecture and GNU triplet
RUN case "${TARGETPLATFORM:-linux/$(dpkg --print-architecture)}" in \
      linux/amd64) arch=amd64 triplet=x86_64-linux-gnu ;; \
      linux/arm64|linux/arm64/v8) arch=arm64 triplet=aarch64-linux-gnu ;; \
      linux/arm/v7|linux/arm|linux/armhf) arch=armhf triplet=arm-linux-gnueabihf ;; \
      *) echo "no Debian cross compiler mapped for platform '${TARGETPLATFORM}'" >&2; exit 1 ;; \
    esac \
 && echo "arch=$arch triplet=$triplet" > /etc/target \
 && echo 'deb-src http://deb.debian.org/debian bookworm main' > /etc/apt/sources.list.d/lldpd-src.list \
 && dpkg --add-architecture "$arch" \
 && apt-get update \
 && if [ "$arch" = "$(dpkg --print-architecture)" ]; then cc=gcc; else cc="gcc-$triplet"; fi \
 && apt-get install -y --no-install-recommends "$cc" "libc6-dev:$arch" dpkg-dev make pkg-config ca-certificates \
      "libevent-dev:$arch" "libbsd-dev:$arch" "libcap-dev:$arch" "libpython3.11-dev:$arch"

# lldpd (CDP/LLDP reception, issue 19) from Debian's own source, without SNMP, XML and readline:
# Debian's binary package links net-snmp and took the image past its size budget; this build adds about 1 MB.
# `|| true`: some mirrors lack the upstream tarball's signature (lldpd_1.0.16.orig.tar.gz.asc, 404), which
# fails apt-get source though the .dsc, tarball and Debian diff arrive, each checked by apt against the signed
# Sources index; dpkg-source --no-check then unpacks them (a missing tarball still fails the build here).
# PKG_CONFIG_LIBDIR: the image architecture's .pc files, not the builder's.
WORKDIR /usr/src
RUN . /etc/target \
 && (apt-get source --download-only lldpd || true) && dpkg-source --no-check -x lldpd_*.dsc lldpd \
 && cd lldpd \
 && ./configure --host="$triplet" --prefix=/usr --sysconfdir=/etc --localstatedir=/var --runstatedir=/run \
      --without-snmp --without-xml --without-readline --without-seccomp --disable-doxygen-doc --disable-static \
      --with-privsep-user=_lldpd --with-privsep-group=_lldpd --with-privsep-chroot=/run/lldpd \
      PKG_CONFIG_LIBDIR="/usr/lib/$triplet/pkgconfig:/usr/share/pkgconfig" >/dev/null \
 && make -j"$(nproc)" >/dev/null \
 && make install-strip DESTDIR=/opt/lldpd >/dev/null \
 && rm -rf /opt/lldpd/usr/share /opt/lldpd/usr/include /opt/lldpd/usr/lib/pkgconfig /opt/lldpd/etc \
 && find /opt/lldpd -name '*.la' -delete \
 && cd / && rm -rf /usr/src/lldpd*

# The pump with setup.py's flags, named as the image's Python looks for it (EXT_SUFFIX); the build stage
# checks that it imports.
COPY appliance/tftp/_pump.c /usr/src/pump/
RUN . /etc/target \
 && py=$(cd /usr/include && ls -d python3.* | head -n1) \
 && mkdir -p /opt/pump \
 && "$triplet-gcc" -shared -fPIC -fwrapv -DNDEBUG -O2 -Wall -Wextra -Wno-unused-parameter \
      -I"/usr/include/$triplet/$py" -I"/usr/include/$py" /usr/src/pump/_pump.c \
      -o "/opt/pump/_pump.cpython-$(echo "${py#python}" | tr -d .)-$triplet.so"

# The station's venv, built on the image's architecture (under qemu for a Pi image): pip only unpacks
# wheels here; nothing is compiled (no compiler: setup.py's optional pump fails fast and the one built
# above is put in its place).
FROM --platform=$TARGETPLATFORM ${BASE} AS build

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates

WORKDIR /opt/station
COPY pyproject.toml setup.py README.md ./
COPY appliance ./appliance
# tools/ (the phone model behind `appliance simulate` and `appliance demo`) is a package of this project too
COPY tools ./tools
COPY --from=native /opt/pump/ /opt/pump/
RUN --mount=type=secret,id=ca set -e; \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi; \
    python3 -m venv /opt/venv; \
    /opt/venv/bin/pip install --no-compile . ; \
    cd / ; \
    cp /opt/pump/_pump.*.so "$(/opt/venv/bin/python -c 'import appliance.tftp as t, os; print(os.path.dirname(t.__file__))')/" ; \
    /opt/venv/bin/python -c 'import appliance.tftp._pump' ; \
    /opt/venv/bin/python -m pip uninstall -y -q setuptools pip ; \
    /opt/venv/bin/python -m compileall -q --invalidation-mode unchecked-hash /opt/venv/lib >/dev/null
# Bytecode built once, here: without it every service compiles its modules at each start and keeps the
# heap that took (measured: 8.6 MiB more PSS for the idle station).  unchecked-hash: the image never
# changes its sources, and COPY need not keep their mtimes.  pip and setuptools are not needed at run time
# (supervisor 4.3 reads its entry points with importlib.metadata on Python 3.8+).

FROM --platform=$TARGETPLATFORM ${BASE}

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates libevent-2.1-7 libbsd0 libcap2 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* \
 && groupadd --system _lldpd \
 && useradd --system --gid _lldpd --home-dir /run/lldpd --no-create-home --shell /usr/sbin/nologin _lldpd

COPY --from=native /opt/lldpd/ /
RUN ldconfig && lldpcli -v >/dev/null
COPY --from=build /opt/venv /opt/venv
WORKDIR /opt/station
COPY config/ /opt/station/config/
COPY config/ /config/
RUN mkdir -p /firmware /data

ENV PATH=/opt/venv/bin:$PATH \
    APPLIANCE_CONFIG=/config/appliance.toml \
    APPLIANCE_TFTP_ROOT=/firmware \
    APPLIANCE_STATE_DIR=/data

VOLUME ["/data"]
EXPOSE 67/udp 69/udp 53/udp 6970/tcp 8080/tcp

HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
  CMD ["python", "-m", "appliance.api.healthcheck"]

# Needs NET_BIND_SERVICE, NET_RAW, NET_ADMIN (see compose.yaml); `appliance run` names any that is missing.
CMD ["appliance", "run", "--supervisord-conf", "/opt/station/config/supervisord.conf"]

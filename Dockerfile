# syntax=docker/dockerfile:1
# Recovery station: DHCP, TFTP + HTTP :6970, DNS and the status API under supervisord.
# Multi-arch: docker buildx build --platform linux/amd64,linux/arm64,linux/arm/v7 (make buildx).
# Behind a TLS-intercepting proxy: --secret id=ca,src=/path/to/ca-bundle.crt (used by pip only).
# BASE: another Debian 12 base, e.g. a locally imported one for an emulated architecture (tests/test_image_arch.py).
ARG BASE=debian:bookworm-slim
FROM ${BASE} AS build

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

# A compiler for the one C part (appliance/tftp/_pump.c) and for lldpd; it stays in this stage.
RUN echo 'deb-src http://deb.debian.org/debian bookworm main' > /etc/apt/sources.list.d/lldpd-src.list \
 && apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-dev gcc libc6-dev ca-certificates \
      dpkg-dev make pkg-config libevent-dev libbsd-dev libcap-dev

# lldpd (CDP/LLDP reception, issue 19) from Debian's own source, without SNMP, XML and readline:
# Debian's binary package links net-snmp and took the image past its size budget; this build adds about 1 MB.
# `|| true`: some mirrors lack the upstream tarball's signature (lldpd_1.0.16.orig.tar.gz.asc, 404), which
# fails apt-get source though the .dsc, tarball and Debian diff arrive, each checked by apt against the signed
# Sources index; dpkg-source --no-check then unpacks them (a missing tarball still fails the build here).
WORKDIR /usr/src
RUN (apt-get source --download-only lldpd || true) && dpkg-source --no-check -x lldpd_*.dsc lldpd \
 && cd lldpd \
 && ./configure --prefix=/usr --sysconfdir=/etc --localstatedir=/var --runstatedir=/run \
      --without-snmp --without-xml --without-readline --without-seccomp --disable-doxygen-doc --disable-static \
      --with-privsep-user=_lldpd --with-privsep-group=_lldpd --with-privsep-chroot=/run/lldpd >/dev/null \
 && make -j"$(nproc)" >/dev/null \
 && make install-strip DESTDIR=/opt/lldpd >/dev/null \
 && rm -rf /opt/lldpd/usr/share /opt/lldpd/usr/include /opt/lldpd/usr/lib/pkgconfig /opt/lldpd/etc \
 && find /opt/lldpd -name '*.la' -delete \
 && cd / && rm -rf /usr/src/lldpd* /var/lib/apt/lists/* /var/cache/apt/*

WORKDIR /opt/station
COPY pyproject.toml setup.py README.md ./
COPY appliance ./appliance
# tools/ (the phone model behind `appliance simulate` and `appliance demo`) is a package of this project too
COPY tools ./tools
RUN --mount=type=secret,id=ca set -e; \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi; \
    python3 -m venv /opt/venv; \
    /opt/venv/bin/pip install --no-compile . ; \
    cd / && /opt/venv/bin/python -c 'import appliance.tftp._pump' ; \
    /opt/venv/bin/python -m pip uninstall -y -q setuptools pip ; \
    /opt/venv/bin/python -m compileall -q --invalidation-mode unchecked-hash /opt/venv/lib >/dev/null
# Bytecode built once, here: without it every service compiles its modules at each start and keeps the
# heap that took (measured: 8.6 MiB more PSS for the idle station).  unchecked-hash: the image never
# changes its sources, and COPY need not keep their mtimes.  pip and setuptools are not needed at run time
# (supervisor 4.3 reads its entry points with importlib.metadata on Python 3.8+).

FROM ${BASE}

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates libevent-2.1-7 libbsd0 libcap2 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* \
 && groupadd --system _lldpd \
 && useradd --system --gid _lldpd --home-dir /run/lldpd --no-create-home --shell /usr/sbin/nologin _lldpd

COPY --from=build /opt/lldpd/ /
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

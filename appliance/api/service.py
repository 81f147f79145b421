"""`appliance serve api`: gunicorn in the foreground running `create_app(cfg)`.

Settings come from `gunicorn.conf.py` beside the station config (built-in
defaults when absent, e.g. a user's /config volume without it); the bind
address always comes from `[api]`.  The gunicorn master beats the `api`
heartbeat, so health reports the API like every other service.
"""
from __future__ import annotations

import argparse
import logging
import runpy
from pathlib import Path

from gunicorn.app.base import BaseApplication

from ..config import Config
from ..service import ServiceContext

log = logging.getLogger("api")

DEFAULTS = {"worker_class": "gthread", "workers": 1, "threads": 16, "timeout": 90, "graceful_timeout": 5,
            "accesslog": "-", "errorlog": "-", "control_socket_disable": True}


class ApiApplication(BaseApplication):
    def __init__(self, cfg: Config, conf_file: Path | None):
        self.cfg_station = cfg
        self.conf_file = conf_file
        self.ctx: ServiceContext | None = None
        super().__init__()

    def load_config(self) -> None:
        for key, value in DEFAULTS.items():
            self.cfg.set(key, value)
        if self.conf_file and self.conf_file.is_file():
            for key, value in runpy.run_path(str(self.conf_file)).items():
                if key in self.cfg.settings:
                    self.cfg.set(key, value)
        self.cfg.set("bind", [f"{self.cfg_station.api.host}:{self.cfg_station.api.port}"])
        self.cfg.set("when_ready", self._when_ready)
        self.cfg.set("on_exit", self._on_exit)
        self.cfg.set("proc_name", "appliance-api")

    def _when_ready(self, server) -> None:
        self.ctx = ServiceContext("api", self.cfg_station)
        cfg = self.cfg_station
        self.ctx.start_heartbeat(lambda: {"bind": f"{cfg.api.host}:{cfg.api.port}", "workers": self.cfg.workers,
                                          "writes": bool(cfg.api.token)})
        log.info("status API on http://%s:%d/ (writes %s)", cfg.api.host, cfg.api.port,
                 "need the bearer token" if cfg.api.token else "disabled: no token")

    def _on_exit(self, server) -> None:
        if self.ctx:
            self.ctx.stop()

    def load(self):
        from .app import create_app
        return create_app(self.cfg_station)


def conf_path(cfg: Config) -> Path:
    return Path(cfg.source).resolve().parent / "gunicorn.conf.py"


def import_before_fork() -> None:
    """Import Flask and the app's modules in the master, where the forked worker shares them
    copy-on-write (measured ~3 MiB less for the API), but open nothing: the store and app are made in
    the worker (`load`), so no SQLite connection crosses a fork."""
    import gc

    from . import app  # noqa: F401

    gc.freeze()   # the collector would otherwise touch, and so copy, every shared object


def serve(cfg: Config, args: argparse.Namespace | None = None) -> int:
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    import_before_fork()
    ApiApplication(cfg, conf_path(cfg)).run()
    return 0

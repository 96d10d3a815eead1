"""A trail with several periods and streams, written with a pinned clock."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from idp.audit import Auditor, RequestInfo
from idp.audit.trail import TrailSettings, TrailSink, load_audit_keys
from tests.fixtures.live import LiveIdp, serve_app
from tests.fixtures.servers import free_port

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="session")
def audit_keys_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audit-keys")
    load_audit_keys(path, generate=True)
    return path


@pytest.fixture
def audit_keys(tmp_path: Path, audit_keys_master: Path) -> Path:
    """A private copy of the audit keys (tests rotate them)."""
    dest = tmp_path / "audit-keys"
    shutil.copytree(audit_keys_master, dest)
    return dest


TrailFactory = Callable[..., Path]


@pytest.fixture
def write_trail(tmp_path: Path, audit_keys: Path) -> TrailFactory:
    """Write ``periods`` periods of 60 s with ``per_period`` events each (a log file rolls
    by size every few events), then close the stream; returns the trail folder."""

    def write(periods: int = 4, per_period: int = 6, roll_bytes: int = 4096,
              close: bool = True) -> Path:
        directory = tmp_path / "trail"
        clock = Clock()
        sink = TrailSink(TrailSettings(directory, audit_keys, roll_seconds=60,
                                       roll_bytes=roll_bytes), clock=clock)
        auditor = Auditor(sink, clock=lambda: _dt(clock.t))
        for p in range(periods):
            for i in range(per_period):
                clock.t = T0 + p * 60 + i * 5
                auditor.emit("Login", RequestInfo("192.0.2.1", "t", f"r{p}-{i}"),
                             user=f"user{i}", additional={"pad": "x" * 900})
        clock.t = T0 + periods * 60 + 1
        if close:
            auditor.close()
        return directory

    return write


def _dt(t: float):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC)


@pytest.fixture
def trail_idp(demo_keys_dir: Path, tmp_path: Path, audit_keys: Path) -> Iterator[LiveIdp]:
    """The demo on a live port, its audit sink the signed trail in ``tmp_path / "trail"``
    (``LiveIdp.audit`` is ``None``: read the trail)."""
    from idp.app import build_components, create_app
    from idp.demo import demo_config

    port = free_port()
    config = demo_config(port, keys_dir=demo_keys_dir, metadata_dirs=[tmp_path / "metadata"],
                         audit="none")
    config = config.model_copy(update={"audit": config.audit.model_copy(update={
        "sink": "trail", "dir": tmp_path / "trail", "keys_dir": audit_keys})})
    comps = build_components(config, demo=True)
    app = create_app(config, comps, demo=True)
    with serve_app(app, port) as url:
        try:
            yield LiveIdp(url, app, comps, None)  # type: ignore[arg-type]
        finally:
            comps.close()

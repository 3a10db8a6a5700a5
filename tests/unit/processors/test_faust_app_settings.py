"""The faust apps keep their folders in Cairn's data dir, not the working directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from processors.faust_app import _app
from services.settings import Settings


def test_each_app_keeps_its_folder_under_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    data_dir = tmp_path / "data"
    settings = Settings.load(data_dir=data_dir, kafka_bootstrap="127.0.0.1:9")
    app = _app(settings, "cairn-deployments", web=False)
    assert Path(app.conf.datadir).resolve() == (data_dir / "faust" / "cairn-deployments").resolve()
    assert not list(tmp_path.glob("*-data"))
    app._create_directories()  # what the worker does first: the folder must be makeable
    assert (data_dir / "faust" / "cairn-deployments").is_dir()

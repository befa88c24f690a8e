"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import renderer
from renderer.api import directory_assets

pytest_plugins = ["fakes.fixtures"]  # the Sheets emulator: sheets_server, emulator


@pytest.fixture(scope="session")
def demo_dir() -> Path:
    """The demo templates and their assets (``renderer/demo``)."""
    return Path(renderer.__file__).parent / "demo"


@pytest.fixture(scope="session")
def demo_assets(demo_dir: Path) -> Callable[[str], bytes]:
    """The asset store a demo template's ``asset:`` names resolve from."""
    return directory_assets(demo_dir)


@pytest.fixture
def load_demo(demo_dir: Path) -> Callable[[str], renderer.Template]:
    """``load_demo("card")`` loads ``renderer/demo/card.json``."""

    def load(name: str) -> renderer.Template:
        return renderer.load_template(demo_dir / f"{name}.json")

    return load

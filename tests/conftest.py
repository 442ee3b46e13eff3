"""Shared pytest setup: the slow whole-book test runs last, after every fast unit test."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "book: executes the whole book (slow); always runs last")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("book") is not None)  # stable sort

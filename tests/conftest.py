"""Shared fixtures: each app trained once per test session, on first use, into its own folders; no network."""

import socket

import pytest

from apps import pipeline
from apps.registry import load_app
from tests.helpers import folders


@pytest.fixture(scope="session")
def trained_app(tmp_path_factory):
    """`trained_app(name) -> (name, folder, training report)`: the app trained with --quick under `folder`.

    Tests may add versions and reports under the folder, but must leave version 1, the training's export."""
    trained = {}

    def train(name):
        if name not in trained:
            tmp_path = tmp_path_factory.mktemp(name)
            trained[name] = (name, tmp_path, pipeline.main(load_app(name), ["train", "--quick", *folders(tmp_path)]))
        return trained[name]

    return train


@pytest.fixture
def no_network(monkeypatch):
    """Any socket connection fails at once, as on an offline machine."""

    def refuse(*arguments, **keyword_arguments):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket, "create_connection", refuse)

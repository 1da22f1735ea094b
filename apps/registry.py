"""Each app by its name, for the tools and tests that take an app's name."""

import importlib

from apps import pipeline
from serving.contracts import CONTRACTS


def load_app(name):
    """The `pipeline.App` of the module `apps.<name>`, e.g. `load_app("sentiment")`."""
    try:
        module = importlib.import_module(f"apps.{name}")
    except ModuleNotFoundError:
        raise ValueError(f"No app module apps/{name}.py. Received: {name!r}; known: {sorted(CONTRACTS)}") from None
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, pipeline.App) and value.name == name:
            return value()
    raise ValueError(f"apps/{name}.py defines no App subclass named {name!r}. Received: {name!r}")

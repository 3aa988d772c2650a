"""Root conftest of the pytest-dbarch repository (the plugin itself loads by entry point)."""

pytest_plugins = ["pytester"]

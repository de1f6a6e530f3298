"""The package's version (``consortium.__version__``; the same as ``[project] version`` in
pyproject.toml). Modules inside the package read it from here: the package root is the public face
(``consortium.Client`` is the SDK's) and nothing inside imports it."""

__version__ = "0.1.0"

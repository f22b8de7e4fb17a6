"""The suite's root: pytest puts this folder on ``sys.path``, so every test module can import
the shared test helpers (``helpers``, ``interop.conftest``, ``deploy.servers``) however it is
selected. ``tests/examples/`` has no ``__init__.py`` on purpose: as a package it would be named
``examples`` and hide the repository's ``examples`` package that its tests run."""

"""Use cases: one function per user action, one transaction each.

Importing the package installs the therapy-integrity check that runs before every commit.
"""

from app.services import integrity  # noqa: F401

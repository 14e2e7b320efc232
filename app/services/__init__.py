"""Use cases: one function per user action, one transaction each.

Importing the package installs what every commit does last (app.services.commit): the
therapy-integrity check and the audit hash chain.
"""

from app.services import commit  # noqa: F401

"""The SOAP WorkflowService for providers (CONTRACT §4) and the simulated provider.

Importing this package makes spyne importable on Python 3.12+ (see `compat`) before any of
its modules imports spyne; nothing else happens at import time.
"""

from webservice import compat

compat.install()

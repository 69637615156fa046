"""nearcare: plan primary care and neighbourhood health services in England from open data.

Start with ``nearcare.open(path)``, which returns a :class:`~nearcare.project.Project`.
"""

from nearcare._errors import InputError, StoreError
from nearcare.project import Project, open

__all__ = ["InputError", "Project", "StoreError", "__version__", "open"]
__version__ = "0.1.0"

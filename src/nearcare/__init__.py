"""nearcare: plan primary care and neighbourhood health services in England from open data."""

from nearcare._errors import InputError, StoreError

__all__ = ["InputError", "StoreError", "__version__"]
__version__ = "0.1.0"

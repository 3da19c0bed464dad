from runward.core.store.migrate import SchemaOutOfDate, upgrade
from runward.core.store.repo import Store

__all__ = ["SchemaOutOfDate", "Store", "upgrade"]

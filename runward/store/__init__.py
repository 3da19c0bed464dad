from runward.store.migrate import SchemaOutOfDate, upgrade
from runward.store.repo import Store

__all__ = ["SchemaOutOfDate", "Store", "upgrade"]

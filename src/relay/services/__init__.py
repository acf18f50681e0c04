"""Services: the logic between thin routes and the storage and backend interfaces."""

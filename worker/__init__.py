"""Workers: consume partition queues into hourly rows (`python -m worker`); the cleaner (`python -m worker.cleaner`)."""

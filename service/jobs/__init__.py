"""The job path: submit (API) → Celery by name → worker (training/tasks.py) → publish → reload."""

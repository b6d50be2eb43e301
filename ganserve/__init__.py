"""The composition root: the `ganserve` command wires the service, the worker and training together."""

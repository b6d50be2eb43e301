"""Offline training for ganserve: data sources, model families, trainer, evaluator, exporter."""

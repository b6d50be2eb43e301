"""The ganserve command: serve, worker, up, train, evaluate. Training commands import torch lazily."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ganserve", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1,
                       help="API processes sharing the port, each with its own sessions and batcher (see README)")
    serve.add_argument("--quiet", action="store_true", help="no access log, warnings only")

    commands.add_parser("worker", help="run one Celery worker for training jobs")

    up = commands.add_parser("up", help="Redis (if none answers), one worker and the API; Ctrl-C stops all")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=8000)

    train = commands.add_parser("train", help="train a family offline and publish it")
    train.add_argument("family")
    train.add_argument("--steps", type=int)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--data", default="default", help="a data source; a translation family takes JSON: "
                       "{\"a\": \"mnist\", \"b\": \"uci\"}")
    train.add_argument("--model", help="name to publish under (default: the family's name)")
    train.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                       help="a family hyper-parameter (JSON value), repeatable")
    train.add_argument("--repository", type=Path, help="where to publish (default: the writable repository folder, "
                       "var/models; the shipped models/ only when named); versions are numbered across all folders")
    train.add_argument("--threads", type=int, default=0)
    train.add_argument("--promote", action=argparse.BooleanOptionalAction, default=None,
                       help="make the new version the default if it passes its gate (default: only for a new name)")

    evaluate = commands.add_parser("evaluate", help="print a published model's quality measures")
    evaluate.add_argument("model")
    evaluate.add_argument("--version", type=int)
    evaluate.add_argument("--n", type=int, default=1000)

    pictures = commands.add_parser("pictures", help="render the README pictures from the shipped models")
    pictures.add_argument("--repository", type=Path, action="append",
                          help="model repository folder (repeatable; default: models)")
    pictures.add_argument("--out", type=Path, default=Path("docs/images"))
    pictures.add_argument("--seed", type=int, default=7)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return COMMANDS[args.command](args) or 0


def _serve(args) -> int:
    import uvicorn

    if args.workers < 1:
        raise SystemExit("--workers: at least 1")
    os.environ["GANSERVE_PROCESSES"] = str(args.workers)  # each process's sessions take their share of the cores
    uvicorn.run("service.app:create_app", factory=True, host=args.host, port=args.port, workers=args.workers,
                **({"access_log": False, "log_level": "warning"} if args.quiet else {}))


def _worker(args) -> int:
    from training.tasks import run_worker

    run_worker()


def _up(args) -> int:
    from ganserve.launcher import up

    return up(args.host, args.port)


def _train(args) -> int:
    from service.repository import Card
    from service.settings import get_settings
    from training.config import TrainConfig
    from training.export import export
    from training.trainer import progress_bar, train

    params = {}
    for item in args.param:
        key, _, value = item.partition("=")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    data = json.loads(args.data) if args.data.startswith("{") else args.data  # {"a": ..., "b": ...}: translation
    config = TrainConfig(family=args.family, steps=args.steps, seed=args.seed, data=data,
                         model=args.model, params=params, threads=args.threads)
    with progress_bar(f"train {args.family}") as on_progress:
        checkpoint = train(config, on_progress=on_progress)
    print("exporting and evaluating ...", file=sys.stderr)
    folders = get_settings().repositories
    target = args.repository or folders[0]
    path = export(checkpoint, target, others=tuple(f for f in folders if f.resolve() != target.resolve()),
                  promote=args.promote)
    card = Card.load(path)
    print(json.dumps({"published": str(path), "promoted": card.promoted,
                      "gate": card.gate.summary() if card.gate else None, "metrics": card.metrics}, indent=2))


def _evaluate(args) -> int:
    from service.repository import Repository
    from service.settings import get_settings
    from training.evaluate import evaluate

    repository = Repository(get_settings().repositories)
    repository.refresh()
    model = repository.get(args.model, args.version)
    print(json.dumps({"model": model.name, "version": model.version, **evaluate(model, n=args.n)}, indent=2))


def _pictures(args) -> int:
    from training.pictures import write_all

    for path in write_all(args.repository or [Path("models")], args.out, args.seed):
        print(path)


COMMANDS = {"serve": _serve, "worker": _worker, "up": _up, "train": _train, "evaluate": _evaluate,
            "pictures": _pictures}

if __name__ == "__main__":
    sys.exit(main())

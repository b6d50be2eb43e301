"""The ganserve command: serve, worker, up, train, evaluate, pictures, the store's migrate and import-var, and
the offline tools (warm, rank, truncation, classifier, catalog). Training commands import torch lazily."""
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

    migrate = commands.add_parser("migrate", help="create or upgrade the store's schema (GANSERVE_DATABASE_URL, "
                                  "else SQLite in GANSERVE_DATA); run once before starting new versions")
    migrate.add_argument("--import", dest="import_var", type=Path, metavar="VAR",
                         help="then import a folder-based var/ into it, as import-var does")

    imported = commands.add_parser("import", help="serve a GAN trained elsewhere: its generator ONNX (and "
                                   "discriminator) read, checked and published as a new version of NAME")
    imported.add_argument("generator", type=Path, help="the generator's .onnx")
    imported.add_argument("--discriminator", type=Path, help="its discriminator's .onnx (enables nice, rejection)")
    imported.add_argument("--name", required=True, help="the model name to publish under")
    imported.add_argument("--latent", choices=["normal", "uniform"], default="normal",
                          help="the distribution z was drawn from in training (a graph cannot say)")
    imported.add_argument("--labels", help="comma-separated label names, where the graph takes labels")
    imported.add_argument("--description", default="")
    imported.add_argument("--promote", action=argparse.BooleanOptionalAction, default=None,
                          help="make it the default (default: only for a new name)")

    import_var = commands.add_parser("import-var", help="import a folder-based var/ (job records, uploads, the "
                                     "writable repository's versions and aliases) into the store; safe to repeat")
    import_var.add_argument("folder", type=Path, nargs="?", default=None,
                            help="the var/ folder (default: GANSERVE_DATA)")
    import_var.add_argument("--repository", type=Path,
                            help="its writable repository folder (default: FOLDER/models)")

    up = commands.add_parser("up", help="its own Redis (unless GANSERVE_REDIS_URL names one), one worker and the API; "
                             "prints the URL, the key and three commands to try once all answer; Ctrl-C stops all")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=8000)

    train = commands.add_parser("train", help="train a family offline and publish it")
    train.add_argument("family")
    train.add_argument("--steps", type=int)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--data", default="default", help="a data source; a translation family takes JSON: "
                       "{\"a\": \"mnist\", \"b\": \"uci\"}")
    train.add_argument("--model", help="name to publish under (default: the family's name)")
    _add_params(train)
    train.add_argument("--repository", type=Path, help="where to publish (default: the writable repository folder, "
                       "var/models; the shipped models/ only when named); versions are numbered across all folders")
    train.add_argument("--threads", type=int, default=None,
                       help="torch threads (default: GANSERVE_TRAIN_THREADS; 0 measures them over the first steps)")
    train.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None,
                       help="default: GANSERVE_DEVICE, auto: CUDA when torch sees a GPU, else the CPU")
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

    warm = commands.add_parser("warm", help="continue a published version from its ONNX weights, publish the next")
    warm.add_argument("folder", type=Path, help="the version folder to start from, e.g. models/mnist-cgan/1")
    warm.add_argument("--steps", type=int, help="steps to continue for (required unless --from-checkpoint)")
    _add_params(warm)
    warm.add_argument("--repository", type=Path, default=Path("models"),
                      help="where to publish; numbered after every configured repository folder, as train")
    warm.add_argument("--promote", action=argparse.BooleanOptionalAction, default=False,
                      help="make the new version the default if it passes its gate (default: never)")
    warm.add_argument("--checkpoint", type=Path, help="save the run's checkpoint here")
    warm.add_argument("--from-checkpoint", type=Path, help="skip training: export this run's checkpoint")

    rank = commands.add_parser("rank", help="choose a version's nice ranking on evaluator A and write it into its card")
    rank.add_argument("folder", type=Path, help="the version folder, e.g. models/mnist-dcgan/1")
    rank.add_argument("--dry-run", action="store_true", help="choose and print; write nothing, measure no B")

    truncation = commands.add_parser("truncation", help="measure the truncation trick and record it in the cards")
    truncation.add_argument("models", nargs="*", help="model names (default: every one whose measures ask for it)")
    truncation.add_argument("--repository", type=Path, default=Path("models"))
    truncation.add_argument("--n", type=int, default=1000)

    classifier = commands.add_parser("classifier", help="retrain a digit classifier of training/assets/")
    classifier.add_argument("which", nargs="?", default="A", choices=["A", "B", "uci", "uci-judge"],
                            help="evaluator A or B, the UCI classifier, or the UCI judge (default: A)")

    catalog = commands.add_parser("catalog", help="write the families' catalog the service validates jobs with")
    catalog.add_argument("--check", action="store_true", help="write nothing; exit 1 if the catalog is stale")

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return COMMANDS[args.command](args) or 0


def _serve(args) -> int:
    from service import server

    if args.workers < 1:
        raise SystemExit("--workers: at least 1")
    os.environ["GANSERVE_PROCESSES"] = str(args.workers)  # each process's sessions take their share of the cores
    server.run(args.host, args.port, args.workers, args.quiet)


def _worker(args) -> int:
    from training.tasks import run_worker

    run_worker()


def _migrate(args) -> int:
    from service.settings import get_settings
    from service.store import open_store, schema

    settings = get_settings()
    store = open_store(settings, ensure=False)
    before, after = schema.upgrade(store.engine)
    print(f"store {store.describe()}: schema {before or 'none'} -> {after}")
    if args.import_var is not None:
        args.folder, args.repository = args.import_var, None
        return _import_var(args)
    return 0


def _import_var(args) -> int:
    from service.settings import get_settings
    from service.store import open_store
    from service.store.importer import import_var

    settings = get_settings()
    folder = args.folder or settings.data
    counts = import_var(open_store(settings), folder, args.repository or folder / "models")
    print(json.dumps({"imported": counts, "from": str(folder)}))
    return 0


def _up(args) -> int:
    from ganserve.launcher import up

    return up(args.host, args.port)


def _train(args) -> int:
    from service.repository import Card
    from service.settings import get_settings
    from training import hardware
    from training.config import TrainConfig
    from training.export import export
    from training.trainer import progress_bar, train

    params = dict(args.param)
    settings = get_settings()
    data = json.loads(args.data) if args.data.startswith("{") else args.data  # {"a": ..., "b": ...}: translation
    threads = settings.train_threads if args.threads is None else args.threads
    config = TrainConfig(family=args.family, steps=args.steps, seed=args.seed, data=data, model=args.model,
                         params=params, threads=threads, device=args.device or settings.device)
    try:
        hardware.resolve(config.device)
    except ValueError as exc:  # cuda on a machine without one
        raise SystemExit(f"--{exc}") from None
    with progress_bar(f"train {args.family}") as on_progress:
        checkpoint = train(config, on_progress=on_progress, workers=settings.train_workers)
    hw = checkpoint.hardware
    print(f"trained on {hw['device']}, {hw['threads']} thread(s) ({hw['threads_chosen']}): "
          f"{checkpoint.step / max(checkpoint.seconds, 1e-9):.1f} steps/s", file=sys.stderr)
    print("exporting and evaluating ...", file=sys.stderr)
    folders = settings.repositories
    target = args.repository or folders[0]
    store = None
    if target.resolve() == folders[0].resolve():  # the writable folder is the store's: publish through it
        from service.store import open_store

        store = open_store(settings).versions
    path = export(checkpoint, target, others=tuple(f for f in folders if f.resolve() != target.resolve()),
                  promote=args.promote, store=store)
    card = Card.load(path)
    print(json.dumps({"published": str(path), "promoted": card.promoted,
                      "gate": card.gate.summary() if card.gate else None, "metrics": card.metrics}, indent=2))


def _import(args) -> int:
    from service.repository import imports
    from service.settings import get_settings
    from service.store import open_store

    settings = get_settings()
    labels = args.labels.split(",") if args.labels else None
    model = imports.inspect(args.generator, args.name, args.latent, labels, args.discriminator, args.description)
    store = open_store(settings).versions
    promote = store.is_new(args.name) if args.promote is None else args.promote
    path = imports.publish(model, store, settings.writable_repository, settings.repositories[1:], promote)
    print(json.dumps({"published": str(path), "version": model.card.version, "promoted": promote,
                      "card": {k: v for k, v in model.card.model_dump(mode="json").items()
                               if k in ("latent", "labels", "sample_shape", "value_range", "imported")}}, indent=2))


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


def _warm(args) -> int:
    from training.warm import continue_version

    if args.steps is None and args.from_checkpoint is None:
        raise SystemExit("warm: --steps is required (unless --from-checkpoint)")
    print(continue_version(args.folder, args.steps, dict(args.param), args.repository, args.promote,
                           args.checkpoint, args.from_checkpoint))


def _rank(args) -> int:
    from training.ranking import rank

    print(json.dumps(rank(args.folder, args.dry_run), indent=2))


def _truncation(args) -> int:
    from training.truncation import measure

    for name, effect in measure(args.repository, args.models, args.n).items():
        print(name)
        for row in effect["by_psi"]:
            print(f"  psi {row['psi']:.1f}  precision {row['precision']:.3f}  recall {row['recall']:.3f}  "
                  f"Fréchet ratio {row['frechet_ratio']:.2f}")


def _classifier(args) -> int:
    from training.classifier import build

    print(json.dumps(build(args.which), indent=2))


def _catalog(args) -> int:
    from training import catalog

    if args.check:
        if not catalog.is_current():
            print(f"{catalog.PATH} is stale: run `ganserve catalog`", file=sys.stderr)
            return 1
        print(f"{catalog.PATH} is current")
        return 0
    print(f"wrote {catalog.write()}")


def _add_params(command: argparse.ArgumentParser) -> None:
    command.add_argument("--param", action="append", default=[], type=_param, metavar="KEY=VALUE",
                         help="a family hyper-parameter, repeatable; the value is JSON where it parses "
                              "(numbers, true, lists), else a string")


def _param(item: str) -> tuple[str, object]:
    """One --param KEY=VALUE: the key, and the value as JSON where it parses, else the string."""
    key, sep, value = item.partition("=")
    if not key or not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {item!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


COMMANDS = {"serve": _serve, "worker": _worker, "migrate": _migrate, "import-var": _import_var, "up": _up,
            "train": _train, "evaluate": _evaluate, "import": _import, "pictures": _pictures, "warm": _warm, "rank": _rank, "truncation": _truncation,
            "classifier": _classifier, "catalog": _catalog}

if __name__ == "__main__":
    sys.exit(main())

"""toolkit zoo build [--only NAME] [--skip-train]; toolkit zoo card [NAME...] (logic: toolkit.zoobuild)"""

from __future__ import annotations

import argparse

HELP = "rebuild the shipped model zoo (train, convert, evaluate, benchmark, cards) or re-render its cards"
DESCRIPTION = (
    HELP
    + """

Every models/<name>/recipe.toml is one shipped model: 'zoo build' trains it, converts it to int8, scores the float
and int8 models on each [[eval]] data SPEC with the same metric code, benchmarks the int8 file and writes the model
card; 'zoo card' re-renders the cards and models/README.md from the JSON files already there (nothing is run).

  toolkit zoo build                                  # everything (about an hour on 2 cores)
  toolkit zoo build --only mnist_classifier --skip-train     # reuse runs/zoo/<name>/<name>.keras
  toolkit zoo card                                   # after editing the card layout or a protocol table
  toolkit zoo card mnist_vae --models /tmp/models    # another copy of models/

Needs a source checkout (or --models DIR); 'zoo build' needs the train extra (TensorFlow).
"""
)
BUILD_HELP = "train, convert, evaluate and benchmark each recipe, then write its card"
CARD_HELP = "re-render model cards and models/README.md from the files beside them"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(
        dest="zoo_command", metavar="SUBCOMMAND", required=True, parser_class=type(parser)
    )
    build = sub.add_parser("build", help=BUILD_HELP, description=BUILD_HELP[0].upper() + BUILD_HELP[1:] + ".")
    build.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="build only this model (its folder name under models/; repeatable)",
    )
    build.add_argument(
        "--skip-train",
        action="store_true",
        help="reuse RUNS/<name>/<name>.keras when it exists (convert, evaluate, bench, card only)",
    )
    _add_models(build)
    build.add_argument(
        "--runs",
        metavar="DIR",
        help="float models, build logs and bench store (default: runs/zoo beside the models folder)",
    )
    build.set_defaults(_run=run_build)
    card = sub.add_parser("card", help=CARD_HELP, description=CARD_HELP[0].upper() + CARD_HELP[1:] + ".")
    card.add_argument("names", nargs="*", metavar="NAME", help="models to re-render (default: all)")
    _add_models(card)
    card.set_defaults(_run=run_card)


def _add_models(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--models",
        metavar="DIR",
        help="the zoo folder holding <name>/recipe.toml (default: models/ of this checkout)",
    )


def run(args: argparse.Namespace) -> int:  # only reached without a subcommand, which argparse refuses first
    from toolkit.errors import UsageError

    raise UsageError("give a subcommand: toolkit zoo build or toolkit zoo card")


def _say(text: str) -> None:
    print(text, flush=True)


def run_build(args: argparse.Namespace) -> int:
    from toolkit.zoobuild import BuildConfig, build_zoo

    build_zoo(
        BuildConfig(
            models_dir=args.models, runs_dir=args.runs, only=tuple(args.only), skip_train=args.skip_train
        ),
        say=_say,
    )
    return 0


def run_card(args: argparse.Namespace) -> int:
    from toolkit.zoobuild import BuildConfig, write_cards

    write_cards(BuildConfig(models_dir=args.models, only=tuple(args.names)), say=_say)
    return 0

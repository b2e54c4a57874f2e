"""Building the shipped model zoo (``models/``): ``toolkit zoo build`` and ``toolkit zoo card``.

The top layer of the package (it uses train, convert, eval and bench; only the CLI sits above it). The zoo's
*files* install as the package data ``toolkit.zoo`` (``models/``); this package is what makes them:

* :mod:`toolkit.zoobuild.recipes` -- ``models/<name>/recipe.toml`` files, the checkout they live in, and the
  ``--set TABLE.KEY=VALUE`` overrides the protocol scripts (``scripts/zoo_*.py``) share;
* :mod:`toolkit.zoobuild.build` -- train -> int8 convert -> evaluate float and int8 -> benchmark -> card, per
  recipe, by running the toolkit's own commands;
* :mod:`toolkit.zoobuild.card` -- the model cards (``models/<name>/README.md``) and the index
  (``models/README.md``), rendered only from the JSON files beside them.
"""

from __future__ import annotations

from toolkit.zoobuild.build import BuildConfig, build_zoo, write_cards
from toolkit.zoobuild.card import render_card, render_index
from toolkit.zoobuild.recipes import checkout_root, find_recipes

__all__ = [
    "BuildConfig",
    "build_zoo",
    "checkout_root",
    "find_recipes",
    "render_card",
    "render_index",
    "write_cards",
]

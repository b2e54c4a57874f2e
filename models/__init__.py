"""The shipped model zoo (installed as the package data ``toolkit.zoo``): int8 .tflite files, manifests, cards."""

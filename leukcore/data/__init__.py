"""The data layer, in the order data flows: the dataset registry, loaders for each published
layout (and a synthetic stand-in), splits, and decoded images.

Every loader returns a :class:`pandas.DataFrame`, one row per image (columns ``id``, ``path``,
``label``, ``class_name``, ``subject``, ``sha256``, ``split``; see :mod:`leukcore.data.datasets`).
This package is the public face: ``from leukcore import data as D; D.load_dataset(...)``.

- :mod:`.errors`    ``DataError``, ``BadImageError``
- :mod:`.registry`  ``DATASETS``: classes, layout and source of each dataset
- :mod:`.datasets`  root resolution, file hashing, one loader per layout, ``load_dataset``
- :mod:`.synthetic` synthetic smears written in each layout
- :mod:`.splits`    stratified / grouped / k-fold splits, saved with file hashes
- :mod:`.images`    decoding and the decoded-image cache, ``load_images``
- :mod:`.verify`    ``leukcore data verify`` and ``leukcore data fetch``
- :mod:`.transport` a dataset carried to another machine in numbered parts, checked there (a GPU lease)
"""
from __future__ import annotations

from .datasets import (data_root_candidates, find_duplicates, fingerprint, load_dataset, load_synthetic,
                       read_layout, resolve_root, sha256_file)
from .errors import BadImageError, DataError
from .images import MAX_PIXELS, ImageCache, cache_dir, default_cache, load_images, read_image
from .registry import DATASETS, IMAGE_EXTENSIONS, DatasetInfo, dataset_info, list_datasets
from .splits import load_split, save_split, split_fractions, split_kfold, split_published_folds, subset
from .synthetic import SYNTHETIC_LAYOUTS, synthetic_image, write_synthetic
from .verify import detect_dataset, fetch_dataset, verify

__all__ = [
    "BadImageError", "DATASETS", "DataError", "DatasetInfo", "IMAGE_EXTENSIONS", "ImageCache", "MAX_PIXELS",
    "SYNTHETIC_LAYOUTS", "cache_dir", "data_root_candidates", "dataset_info", "default_cache", "detect_dataset",
    "fetch_dataset", "find_duplicates", "fingerprint", "list_datasets", "load_dataset", "load_images", "load_split",
    "load_synthetic", "read_image", "read_layout", "resolve_root", "save_split", "sha256_file", "split_fractions",
    "split_kfold", "split_published_folds", "subset", "synthetic_image", "verify", "write_synthetic",
]

"""Datasets: one image-table shape, one registry, exact setting splits and the image pipeline."""

from .registry import DATASETS, list_datasets, open_dataset, register_dataset
from .splits import SETTINGS, Splits, make_splits
from .table import DatasetError, ImageTable

__all__ = ["DATASETS", "SETTINGS", "DatasetError", "ImageTable", "Splits", "list_datasets", "make_splits",
           "open_dataset", "register_dataset"]

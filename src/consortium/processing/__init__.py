"""Data processing: declarative cleaning/scaling/encoding steps fitted on the training split,
splits, and training-time augmentation.

Importing this package does not import torch (augmentation lives in ``processing.augment``),
so serving can use ``Preprocessor.transform_inputs`` with numpy only.
"""

from consortium.processing.preprocessor import Preprocessor
from consortium.processing.splits import kfold, train_val_test_split

__all__ = ["Preprocessor", "kfold", "train_val_test_split"]

"""Classification metrics from confusion matrices, with scikit-learn's conventions."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray


def confusion(y_true: NDArray, y_pred: NDArray, n_classes: int) -> NDArray[np.int64]:
    """Confusion matrix ``C[true, predicted]`` over ``n_classes`` classes."""
    return np.bincount(
        np.asarray(y_true, np.int64) * n_classes + np.asarray(y_pred, np.int64), minlength=n_classes * n_classes
    ).reshape(n_classes, n_classes)


def per_class_scores(matrix: NDArray) -> tuple[NDArray, NDArray, NDArray]:
    """Per-class precision, recall and F1 from a confusion matrix.

    A class never predicted has precision 0, a class absent from the truth
    recall 0, and F1 is 0 when precision and recall are both 0: scikit-learn's
    ``zero_division=0``.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    true_positive = np.diag(matrix)
    predicted, actual = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = np.divide(true_positive, predicted, out=np.zeros_like(true_positive), where=predicted > 0)
    recall = np.divide(true_positive, actual, out=np.zeros_like(true_positive), where=actual > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    return precision, recall, f1


def macro_scores(matrix: NDArray) -> dict[str, float]:
    """Accuracy and macro precision, recall and F1 (unweighted class means)."""
    precision, recall, f1 = per_class_scores(matrix)
    matrix = np.asarray(matrix)
    total = matrix.sum()
    return {
        "accuracy": float(np.trace(matrix) / total) if total else 0.0,
        "precision": float(precision.mean()),
        "recall": float(recall.mean()),
        "f1": float(f1.mean()),
    }


def classification_report(y_true: NDArray, y_pred: NDArray, n_classes: int) -> dict[str, Any]:
    """Every test metric the workflow records for one run.

    Returns
    -------
    dict
        ``accuracy``, ``macro_precision``, ``macro_recall``, ``macro_f1``,
        per-class lists ``precision``, ``recall``, ``f1``, ``support``, and the
        ``confusion_matrix`` (rows: true class, columns: predicted).
    """
    matrix = confusion(y_true, y_pred, n_classes)
    precision, recall, f1 = per_class_scores(matrix)
    macro = macro_scores(matrix)
    return {
        "accuracy": macro["accuracy"],
        "macro_precision": macro["precision"],
        "macro_recall": macro["recall"],
        "macro_f1": macro["f1"],
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "support": matrix.sum(axis=1).astype(int).tolist(),
        "confusion_matrix": matrix.astype(int).tolist(),
    }

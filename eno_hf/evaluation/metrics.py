"""The tagging metrics under their former name: ``eno_hf.metrics`` re-exported, nothing of its own.

The metrics live in ``eno_hf.metrics`` (low in the layers, so the head-kind registry, inference
and training import them downwards); import them from there (and the kind names from
``eno_hf.models.heads``).
"""

from eno_hf.metrics import (  # noqa: F401
    HEAD_METRICS, MULTILABEL, NAN, REGRESSION, SCORE_METRIC, SINGLELABEL, SUMMARY_KEYS, Head, HeadMetrics, aggregate_by_recording, evaluate_heads,
    evaluate_predictions, first_by_recording, flatten_metrics, head_field, multilabel_metrics, regression_metrics,
    singlelabel_metrics, summary_score,
)

__all__ = ["HEAD_METRICS", "MULTILABEL", "NAN", "REGRESSION", "SCORE_METRIC", "SINGLELABEL", "SUMMARY_KEYS", "Head", "HeadMetrics", "aggregate_by_recording",
           "evaluate_heads", "evaluate_predictions", "first_by_recording", "flatten_metrics", "head_field",
           "multilabel_metrics", "regression_metrics", "singlelabel_metrics", "summary_score"]

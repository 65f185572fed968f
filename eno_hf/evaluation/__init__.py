"""Evaluation: metrics on plain arrays, thresholds, baselines, reports, plots, model card.

Submodules (imported explicitly; nothing heavy is imported here):
``metrics`` (``evaluate_heads``, ``multilabel_metrics``, ...), ``thresholds`` (``tune_thresholds``),
``plots`` (matplotlib Agg PNGs), ``report`` (``write_report``, ``print_summary``), ``baselines``
(label-prior and feature-probe baselines), ``model_card`` (``write_model_card``) and ``run``
(``evaluate_model``: predict, tune thresholds, score, report).
"""

"""Training: ``EnoTrainer``, the cached-encoder-input path and ``train_model``.

- ``trainer``: ``EnoTrainer(transformers.Trainer)`` (the model computes the loss in
  ``forward(..., labels)``; ``eno_hf.models.losses``);
- ``cache``: frozen encoder outputs / frozen prefixes computed once (``cache_inputs``) and a
  parameter-sharing ``training_view`` of the model that reads them;
- ``train``: ``train_model(settings, dataset) -> TrainResult``.

Batches come from ``eno_hf.data.collate.EnoCollator``; predictions from
``eno_hf.inference.predict.predict_dataset``. Submodules are imported explicitly
(``from eno_hf.training.train import train_model``) so that importing this package stays cheap.
"""

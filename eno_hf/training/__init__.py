"""Training: multi-task losses, batch collation, ``EnoTrainer`` and ``train_model``.

- ``losses``: ``multitask_loss`` (BCE / CE / MSE with missing labels), ``info_nce``,
  ``pairwise_ranking_loss``;
- ``collate``: ``EnoCollator`` (random crops for training, whole segments for evaluation);
- ``trainer``: ``EnoTrainer(transformers.Trainer)``;
- ``train``: ``train_model(settings, dataset) -> TrainResult``, ``predict_dataset``.

Submodules are imported explicitly (``from eno_hf.training.train import train_model``) so that
importing this package stays cheap.
"""

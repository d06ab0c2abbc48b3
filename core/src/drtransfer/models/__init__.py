"""Model management: full backups of training prefixes, restores, one view of every model, pruning.

- :func:`~drtransfer.models.backup.backup`: copy each run's whole training prefix to its backup location,
  incrementally, the manifest (``drtransfer-backup.json``) written last;
- :func:`~drtransfer.models.restore.restore`: bring a backup (or an uploaded model) back as a training prefix;
- :func:`~drtransfer.models.catalog.catalog`: the models in the local bucket and the backup and upload
  locations the runs name, from parallel listings;
- :func:`~drtransfer.models.prune.prune`: delete old checkpoints that a verified backup holds.

Copies and deletes go through the transfer engine (verification, resume); these modules build plans.
See ``docs/models.md``.
"""

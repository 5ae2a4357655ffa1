"""Contract version: bump the major number on any change a model or a stored result must notice.

2.0: one blind test.csv (ID and OOD shuffled together, no split named anywhere a model can read);
predictions are mol_id, y_pred[, y_std].  1.x runs (id.csv / ood.csv, a split column) are not comparable.
"""
CONTRACT_VERSION = "2.0"

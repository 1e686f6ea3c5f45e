"""One file per dataset (its on-disk layout, splits, labels, corrupt-file policy), the
Dataset bases (``base.py``), class pairing (``pairing.py``) and the registry naming them all
(``registry.py``)."""

"""Recommenders: one module each, one interface (``base.py``), a registry (``registry.py``),
the dataset they fit on (``dataset.py``) and the per-tenant model builder (``model.py``)."""

"""Offline evaluation of the engine on real logs (``funnelrec eval``): see ``run.py``.

Modules: ``formats`` (input formats -> one ``Log``), ``split`` (time split, no leakage),
``replay`` (the train part -> a scratch tenant through the importer and the model builder),
``tasks`` (next item, next basket, bought together), ``metrics``, ``baselines``, ``run``
(every system on every task), ``report`` (Markdown), ``cli`` (the click command).
"""

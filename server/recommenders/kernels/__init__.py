"""Algorithm kernels used by the recommenders (numpy/scipy; ``sums`` compiled by numba).

Nothing here knows about HTTP, SQLite, tenants or events: each kernel takes arrays (dense or
scipy.sparse) and returns arrays. The recommenders in ``server/recommenders/`` turn a tenant's
data into these inputs and the outputs into scored candidates with reasons.

- ``topk``       top-k selection over rows of dense or sparse score blocks
- ``text``       TF-IDF over words and in-word character n-grams (Korean without an analyser)
- ``als``        implicit-feedback ALS (Hu, Koren, Volinsky 2008) with session fold-in
- ``neighbors``  user-kNN over a weighted user x item matrix
- ``groups``     RFM tiers, k-means behavioural clusters, per-group item lift
- ``images``     image embedder interface and a classical colour/pHash/texture extractor
- ``sums``       the personal sources' request arithmetic compiled (``server/jit.py``): the
                 item-to-item sources' neighbour sums, top k and closest seeds in one call, the
                 visitor's items merged with the live ones; exactly the numpy code's answers
- ``factors``    matrix factorisation's request steps compiled: top k, shortlist reads, fold-in's
                 elementwise steps, the reason's closest seed
- ``seeds``      a request's seed views compiled: the session walk over the live state's
                 columns and the page's products before it (``Context.session_vectors``,
                 ``seed_vectors``), exactly the Python walk's weights
"""

"""bnnlib: the Numerai NN Starter as a Bayesian neural network, and the tools to study it.

Modules, one job each:
    data       synthetic Numerai-like data, the real-data loader, the numerapi download
    metrics    per-era scores (2021 corr, numerai_corr, Sharpe, drawdown, exposure)
    models     the baseline MLP, Bayesian MLPs (Pyro), multi-target models, MC dropout, ensembles
    predictive drawing S posterior predictions, streamed over rows, and scoring them
    cache      the on-disk cache of fits and scores
    executor   running independent fits in-process or in local processes
    cluster    --executor: the same jobs on a Dask cluster (local, or an existing scheduler)
    runner     executing the book's chapters with papermill and building the HTML
    bench      the benchmark behind `bnnlib bench`
"""

__version__ = "0.1.0"

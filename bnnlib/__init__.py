"""bnnlib: the Numerai NN Starter as a Bayesian neural network, and the tools to study it.

Sub-packages in the order data flows, each importing only from those before it (the contract
is tests/test_layers.py):
    infra      plumbing: the cache, executors and clusters, interrupts, publishing, exports, provenance
    scoring    per-era Numerai scores and general statistics: pure functions of arrays
    data       synthetic Numerai-like data, the real-data loader, the numerapi download
    models     networks, priors, likelihoods, the baseline MLP, Bayesian MLPs, precision, devices
    evaluate   a model's spec -> fit -> draws -> cached scores; convergence, fits tables, exact checks
    studies    one module per chapter: its models, tables, findings and the talk's numbers
    project    the book as a project: chapters, profiles, parameters and their checks
    report     what a page shows: the chapter's frame, figures, the run registry
    bench      `bnnlib bench`: the engine's speed and a book's cost at scale
    build      executing the book: the runner, the warm-up, the command line
"""

__version__ = "0.1.0"

"""The run registry and MLflow logging: each chapter's rows (`runs.csv`), the registry page's
`registry.csv`, and `--mlflow-uri` against a local file store read back with MLflow's client.
On the tiny synthetic data with one-epoch fits."""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from bnnlib.build import cli, runner
from bnnlib.project import book as project_book

from bnnlib.report import registry
from bnnlib.studies import registry as registry_page

from bnnlib.infra import tracking
from bnnlib.infra.cache import Cache
from bnnlib.data import load_synthetic
from bnnlib.errors import BnnlibError
from bnnlib.evaluate.study import ModelSpec, evaluate_models
from test_cli import project  # noqa: F401  (the fixture: a copy of the book in tmp_path)

REPO = Path(__file__).resolve().parents[1]
TINY_A = ["-p", "synthetic_profile", "tiny", "-p", "epochs", "1", "-p", "draws", "4", "-p", "batch_size", "512"]
TINY = [*TINY_A, "-p", "continue_steps", "200"]  # a short continuation to snapshot B


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Two tiny models fitted once into a cache: (dataset, cache folder, specs, results, events)."""
    folder = tmp_path_factory.mktemp("tiny")
    dataset = load_synthetic("tiny", root=folder / "data")
    specs = [ModelSpec("baseline", method="baseline", epochs=1, batch_size=512, hidden=(8,)),
             ModelSpec("normal", prior="normal", epochs=1, batch_size=512, draws=4, hidden=(8,))]
    cache = Cache(folder / "cache")
    fitted = evaluate_models(specs, dataset, cache)
    return dataset, folder / "cache", specs, fitted, list(cache.events)



def test_a_chapters_rows_say_what_was_computed_and_what_came_from_the_cache(tiny):
    dataset, cache_dir, specs, fitted, events = tiny
    rows = registry.run_rows("ensembles", fitted, events, dataset.fingerprint, "cpu")
    assert list(rows.columns) == list(registry.COLUMNS)
    assert rows["model"].tolist() == ["baseline", "normal"] and not rows["cached"].any()
    assert rows["data_fingerprint"].eq(dataset.fingerprint).all() and rows["device"].eq("cpu").all()
    by_model = rows.set_index("model")
    from bnnlib.evaluate.convergence import judge

    # the BNN's row carries its fit's verdict (a one-epoch fit: still moving); a point network has none
    assert by_model.loc["normal", "verdict"] == judge(fitted["normal"].history).verdict == "still moving"
    assert by_model.loc["baseline", "verdict"] == ""
    assert by_model.loc["normal", "corr_mean"] == pytest.approx(fitted["normal"].summary()["mean"])
    assert (rows["fit_seconds"] > 0).all() and (rows["score_seconds"] > 0).all()

    again = Cache(cache_dir)  # a second run reads both models from the cache
    fitted_again = evaluate_models(specs, dataset, again)
    cached = registry.run_rows("ensembles", fitted_again, again.events, dataset.fingerprint, "cpu")
    assert cached["cached"].all()
    # a cached model shows what computing it cost, from the cache's meta data
    assert cached["fit_seconds"].tolist() == pytest.approx(rows["fit_seconds"].tolist())
    assert cached["cache_key"].tolist() == rows["cache_key"].tolist()


def test_the_registry_gathers_the_chapters_rows_in_order_and_notices_a_change(tiny, tmp_path):
    dataset, _, _, fitted, events = tiny
    for chapter in ("burn_eras", "ensembles"):
        folder = tmp_path / chapter
        folder.mkdir()
        registry.run_rows(chapter, fitted, events, dataset.fingerprint, "cpu").to_csv(folder / "runs.csv", index=False)
    before = registry.inputs_digest(tmp_path, ["ensembles", "burn_eras", "data"])
    table = registry.collect(tmp_path, ["ensembles", "burn_eras", "data"])  # data fits nothing: no file
    assert table["chapter"].tolist() == ["ensembles", "ensembles", "burn_eras", "burn_eras"]
    assert table["cache_key"].str.len().eq(64).all()
    counts = registry_page.summary(table)
    bnn_models = int((table.drop_duplicates("cache_key")["method"] == "bnn").sum())
    assert counts["registry_models"] == 2 and counts["registry_shared"] == 2 and counts["registry_bnn"] == bnn_models
    shown = registry_page.fits_table(table)  # one row per distinct fit, naming the chapters that use it
    assert list(shown.columns) == list(registry_page.TABLE_COLUMNS.values()) and len(shown) == 2
    assert set(shown["chapter"]) == {"ensembles, burn_eras"}
    (tmp_path / "ensembles" / "runs.csv").write_text("chapter\n")
    assert registry.inputs_digest(tmp_path, ["ensembles", "burn_eras"]) != before
    assert registry.collect(tmp_path / "nothing", ["ensembles"]).empty


def test_logging_a_model_twice_keeps_one_run_and_adds_the_chapter(tiny, tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    dataset, _, _, fitted, events = tiny
    uri = f"file:{tmp_path / 'mlruns'}"
    rows = registry.run_rows("ensembles", fitted, events, dataset.fingerprint, "cpu")
    first = tracking.log_fits(uri, rows, fitted)
    again = tracking.log_fits(uri, rows.assign(chapter="burn_eras"), fitted)
    assert again == first and len(set(first)) == 2
    client = tracking.client(uri)
    assert isinstance(client, MlflowClient)
    runs = client.search_runs([tracking.experiment_id(client)])
    assert len(runs) == 2
    assert {r.data.tags[tracking.CHAPTERS_TAG] for r in runs} == {"ensembles,burn_eras"}


@pytest.mark.parametrize("uri", ["mlruns", "ftp://host/x", "file:", "http://", "http://host:99999", "s3://bucket"])
def test_a_malformed_uri_is_one_line_naming_the_forms(uri):
    with pytest.raises(BnnlibError, match=r"--mlflow-uri .* is not an MLflow tracking URI.*file:/"):
        tracking.check_form(uri)


def test_an_unreachable_server_or_a_file_in_the_way_is_one_line(tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(BnnlibError, match=r"cannot reach the MLflow tracking server at http://127.0.0.1"):
        tracking.check_reachable(f"http://127.0.0.1:{port}", timeout=2)
    (tmp_path / "store").write_text("")
    with pytest.raises(BnnlibError, match=r"which is a file; name a folder"):
        tracking.check_reachable(f"file:{tmp_path / 'store'}")


def _fails_in_one_line(capsys, argv: list[str]) -> str:
    status = cli.main(argv)
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.startswith("bnnlib: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_without_mlflow_a_uri_says_how_to_install_it(project, capsys, monkeypatch, tmp_path):
    real = tracking.importlib.util.find_spec
    monkeypatch.setattr(tracking.importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    err = _fails_in_one_line(capsys, ["run", "burn_eras", "--profile", "quick", "--no-build",
                                      "--mlflow-uri", f"file:{tmp_path / 'mlruns'}"])
    assert "pip install 'bnnlib[mlflow]'" in err
    assert not (project / "_build").exists()


@pytest.mark.parametrize("uri, words", [("nope", "is not an MLflow tracking URI"),
                                        ("http://127.0.0.1:1", "cannot reach the MLflow tracking server")])
def test_a_bad_uri_fails_before_anything_runs(project, capsys, uri, words):
    err = _fails_in_one_line(capsys, ["book", "--profile", "quick", "--mlflow-uri", uri])
    assert words in err
    assert not (project / "_build").exists()


def test_a_chapter_logs_its_fits_to_mlflow_and_the_registry_page_gathers_them(project, tmp_path, capsys):
    """`bnnlib run CHAPTER --mlflow-uri file:...` logs one MLflow run per model with its
    parameters, metrics and per-era scores; run again, it logs no second run; the registry page
    then writes _build/results/registry.csv with the chapter's rows."""
    pytest.importorskip("mlflow")
    store = tmp_path / "mlruns"
    argv = ["run", "burn_eras", "--profile", "quick", "--jobs", "1", "--device", "cpu", "--no-build", *TINY_A,
            "-p", "priors", '["normal", "laplace"]', "-p", "continue_steps", "0",  # snapshot A only: one run a fit
            "--mlflow-uri", f"file:{store}"]
    assert cli.main(argv) == 0, capsys.readouterr().err
    runs_csv = pd.read_csv(project / "_build" / "results" / "burn_eras" / "runs.csv")
    assert runs_csv["model"].tolist() == ["normal", "laplace"]

    client = tracking.client(f"file:{store}")
    experiment = tracking.experiment_id(client)
    logged = {run.data.tags["model"]: run for run in client.search_runs([experiment])}
    assert set(logged) == {"normal", "laplace"}
    run = logged["laplace"]
    assert run.data.params["prior"] == "laplace" and run.data.params["epochs"] == "1"
    assert run.data.params["draws"] == "4" and run.data.params["method"] == "bnn"
    assert run.data.tags["verdict"] == runs_csv.set_index("model").loc["laplace", "verdict"] == "still moving"
    assert run.data.tags[tracking.KEY_TAG] == runs_csv.set_index("model").loc["laplace", "cache_key"]
    assert run.data.metrics["corr_mean"] == pytest.approx(runs_csv.set_index("model").loc["laplace", "corr_mean"])
    assert {"corr_sharpe", "fit_seconds", "score_seconds"} <= set(run.data.metrics)
    assert len(client.get_metric_history(run.info.run_id, "elbo_per_row")) >= 1
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == [tracking.ARTIFACT]
    artifact = pd.read_csv(client.download_artifacts(run.info.run_id, tracking.ARTIFACT, str(tmp_path)))
    exported = pd.read_csv(project / "_build" / "results" / "burn_eras" / "laplace" / "per_era.csv")
    pd.testing.assert_frame_equal(artifact[exported.columns.tolist()], exported, check_dtype=False)

    assert cli.main([*argv, "--force"]) == 0  # executed again (models refitted): no second run
    assert len(client.search_runs([experiment])) == 2

    assert cli.main(["run", "registry", "--profile", "quick", "--no-build"]) == 0
    table = pd.read_csv(project / "_build" / "results" / "registry.csv")
    assert table["chapter"].tolist() == ["burn_eras", "burn_eras"]
    assert table["model"].tolist() == ["normal", "laplace"]
    capsys.readouterr()
    assert cli.main(["run", "registry", "--profile", "quick", "--no-build"]) == 0
    assert "unchanged, kept" in capsys.readouterr().out  # the chapters' runs did not change


RUNS_CHAPTER = '''\
# %% tags=["parameters"]
results_dir = "_build/results/{chapter}"
model = "a"

# %%
import os, time
from pathlib import Path
from bnnlib.infra.results import chapter_folder
time.sleep(1.0)
out = chapter_folder(results_dir, "{chapter}")
out.mkdir(parents=True, exist_ok=True)
(out / "runs.csv").write_text("chapter,model\\n{chapter}," + model + "\\n")
'''

PAGE = '''\
# %% tags=["parameters"]
results_dir = "_build/results/page"
runs_of = None

# %%
from pathlib import Path
from bnnlib.report import registry
from bnnlib.project import book as project
root = Path(results_dir).parent
table = registry.collect(root, registry.book_chapters("page"))
(root / "seen.txt").write_text(",".join(table["model"].astype(str)))
'''


def test_a_page_reading_runs_executes_after_every_chapter_and_again_when_they_change(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "_bnnlib_hash", lambda: "fixed-code-hash")
    root = tmp_path / "project"
    (root / "book" / "params").mkdir(parents=True)
    (root / "book" / "intro.md").write_text("# Intro\n")
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n- file: book/one\n"
                                   "- file: book/two\n- file: book/page\n")
    for name in ("one", "two"):
        (root / "book" / f"{name}.py").write_text(RUNS_CHAPTER.replace("{chapter}", name))
    (root / "book" / "page.py").write_text(PAGE)
    (root / "book" / "params" / "tiny.yml").write_text(textwrap.dedent("""\
        description: test
        common: {}
        chapters: {}
        """))
    monkeypatch.chdir(root)
    plans = [runner.plan_chapter(c, project_book.load_profile("tiny", root), profile_name="tiny", root=root)
             for c in project_book.list_chapters(root)]
    runner._run_plans(plans, root, force=False, jobs=2)  # one and two side by side, then the page
    assert (root / "_build" / "results" / "seen.txt").read_text() == "a,a"
    runner.run_chapter("two", "tiny", {"model": "b"}, build=False, root=root)
    runner.run_chapter("page", "tiny", build=False, root=root)  # two's runs changed: executed again
    assert (root / "_build" / "results" / "seen.txt").read_text() == "a,b"


def test_a_model_whose_draws_were_scored_in_ranges_shows_what_the_ranges_cost(tiny, tmp_path):
    """The warm-up scores ranges of draws on its workers and only combines them into the model's
    scores, whose own entry then took a moment: the row adds the ranges' recorded time."""
    from bnnlib.evaluate import predictive
    from bnnlib.evaluate.study import fit_model, score_range

    dataset, _, specs, _, _ = tiny
    cache = Cache(tmp_path / "cache")
    spec = specs[1]
    fit_model(spec, dataset, cache)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(predictive, "DRAW_RANGE", 2)
        for draws in predictive.draw_ranges(spec.n_draws):
            score_range(spec, draws, dataset, cache)
        spent = registry.range_seconds(cache, spec, dataset.fingerprint, "cpu")
        reader = Cache(tmp_path / "cache")
        fitted = evaluate_models([spec], dataset, reader)
        row = registry.run_rows("ensembles", fitted, reader.events, dataset.fingerprint, "cpu", reader).iloc[0]
    scores_event = [e for e in reader.events if e.kind == "scores"][0]
    assert spent > 0 and row["score_seconds"] == pytest.approx(scores_event.seconds + spent)
    assert registry.range_seconds(cache, specs[0], dataset.fingerprint, "cpu") == 0.0

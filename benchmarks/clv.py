"""Lifecycle estimators against lifetimes 0.11.3, and the Ibis/DuckDB summary against pandas.

Two data sets, the same true parameters, each model fitted with ``haina.analytics.clv`` and with
lifetimes on the same per-customer rows, each fit in a subprocess of its own:

- ``day``: 1,000,000 customers (100,000 with ``--quick``) from the BG/NBD, Pareto/NBD and
  Gamma-Gamma generative processes as a daily summary reports them (ages of 1-365 whole days,
  recency rounded up to the day of the last purchase): far fewer distinct
  ``(frequency, recency, T)`` rows than customers;
- ``continuous``: ages drawn uniformly in (0, 365) days and recencies as simulated, as a summary
  imported in fractional weeks, hours or seconds reports them: nearly every row distinct.
  1,000,000 customers for BG/NBD and Gamma-Gamma and 100,000 for Pareto/NBD (lifetimes needs
  about a minute there); 100,000 and 10,000 with ``--quick``.

The top-level ``models`` are the day-grained set's (as before ``datasets`` existed); both sets
are under ``datasets``. Reported per model:

- ``ours_s`` / ``lifetimes_s``: wall seconds of one ``fit()`` in a fresh process, from the
  per-customer arrays to fitted parameters (ours includes collapsing rows to distinct tuples and
  its numerical Hessian for the standard errors; lifetimes' includes its autograd Hessian for
  BG/NBD and Gamma-Gamma);
- ``ratio`` = lifetimes_s / ours_s;
- ``ll_diff_rel`` = (LL at our params - LL at lifetimes' params) / |LL at lifetimes' params|,
  BOTH evaluated with our log-likelihood function on the same data (positive: ours is higher);
- ``peak_mb`` / ``lifetimes_peak_mb``: peak resident memory the fit added over what the process
  held before it (VmHWM after resetting it through /proc/self/clear_refs);
- ``import_s`` / ``lifetimes_import_s``: seconds to import the library in that process, not
  counted in the fit (ours starts Numba and loads its compiled kernels from the on-disk cache
  there; a warm-up run before the timed ones fills that cache, so no fit includes compiling);
- ``grouped``: whether our fit collapsed rows to distinct tuples (chosen on a sample);
  ``kernels``: ``compiled`` (Numba) or ``numpy``.

lifetimes runs with its defaults (BG/NBD and Gamma-Gamma: BFGS with autograd gradients, tol
1e-7; Pareto/NBD: Nelder-Mead without gradients, tol 1e-4, at most 2000 iterations, starting from
numpy's global RNG, seeded here) unless ``--lifetimes-maxiter`` caps it.

Then summarises 10,000,000 order rows (1,000,000 with ``--quick``) into frequency, recency, T and
monetary value with our Ibis pipeline on DuckDB and with a vectorised pandas groupby of the same
definitions, checks they agree, and times both (median of 3 runs after a warm-up run on a small
slice; DuckDB uses every core, pandas one).

Writes benchmarks/results/clv.json and prints a table.

    .venv/bin/python benchmarks/clv.py [--quick] [--lifetimes-grouped] [--datasets day,continuous]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

TRUE_PARAMS = {
    "bgnbd": {"r": 0.25, "alpha": 40.0, "a": 0.8, "b": 2.5},
    "pnbd": {"r": 0.55, "alpha": 70.0, "s": 0.6, "beta": 80.0},
    "gg": {"p": 6.0, "q": 4.0, "gamma": 15.0},
}
LIFETIMES_NAMES = {
    "bgnbd": ["r", "alpha", "a", "b"],
    "pnbd": ["r", "alpha", "s", "beta"],
    "gg": ["p", "q", "v"],
}
TARGET_RATIO = {"bgnbd": 10, "pnbd": 30, "gg": 10}


# --------------------------------------------------------------------------------------------
# one fit, in a subprocess of its own


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def worker(
    model: str, impl: str, data_path: str, out_path: str, maxiter: int | None, grouped: bool
) -> None:
    import warnings

    warnings.simplefilter("ignore")
    data = np.load(data_path)
    x = data["frequency"]
    weights = None
    if model == "gg":
        keep = x > 0
        columns = [x[keep], data["monetary_value"][keep]]
    else:
        columns = [x, data["recency"], data["T"]]
    if grouped:
        stacked = np.stack(columns, axis=1)
        uniq, counts = np.unique(stacked, axis=0, return_counts=True)
        columns = [uniq[:, i] for i in range(uniq.shape[1])]
        weights = counts.astype(float)
    extra: dict = {}
    imported = time.perf_counter()
    if impl == "ours":
        from haina.analytics.clv import _kernels
        from haina.analytics.clv.estimators import MODELS

        extra["import_s"] = time.perf_counter() - imported
        extra["kernels"] = "compiled" if _kernels.compiled() is not None else "numpy"
        fitter = MODELS[model]()
        fit = lambda: fitter.fit(*columns, weights=weights)
        params = lambda: list(fitter.params_.values())
    else:
        import lifetimes

        extra["import_s"] = time.perf_counter() - imported

        np.random.seed(0)  # lifetimes' Pareto/NBD starts from np.random.normal(1, 0.05)
        cls = {
            "bgnbd": lifetimes.BetaGeoFitter,
            "pnbd": lifetimes.ParetoNBDFitter,
            "gg": lifetimes.GammaGammaFitter,
        }[model]
        fitter = cls()
        kwargs = {"weights": weights}
        if maxiter is not None:
            kwargs["maxiter"] = maxiter
        fit = lambda: fitter.fit(*columns, **kwargs)
        params = lambda: [float(fitter.params_[k]) for k in LIFETIMES_NAMES[model]]
    before = _status_mb("VmRSS")
    has_peak = _reset_peak()
    started = time.perf_counter()
    fit()
    seconds = time.perf_counter() - started
    peak = _status_mb("VmHWM") - before if has_peak else float("nan")
    if impl == "ours":
        extra["grouped"] = bool(getattr(fitter, "grouped_", False))
    with open(out_path, "w") as f:
        json.dump(
            {
                "seconds": seconds,
                "params": params(),
                "peak_mb": peak,
                "rows": int(columns[0].shape[0]),
                **extra,
            },
            f,
        )


def run_fit(
    model: str, impl: str, data_path: Path, maxiter: int | None, grouped: bool = False
) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        out_path = out.name
    cmd = [sys.executable, __file__, "--worker", model, impl, str(data_path), out_path]
    if maxiter is not None:
        cmd += ["--lifetimes-maxiter", str(maxiter)]
    if grouped:
        cmd.append("--grouped")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    subprocess.run(cmd, check=True, env=env)
    result = json.loads(Path(out_path).read_text())
    os.unlink(out_path)
    return result


# --------------------------------------------------------------------------------------------
# data


def simulate(customers: int, seed: int, directory: Path) -> dict[str, Path]:
    """The day-grained set: ages in whole days, recencies rounded up to the day."""
    from haina.analytics.clv import simulate as sim

    rng = np.random.default_rng(seed)
    ages = rng.integers(1, 366, customers).astype(float)  # acquired over the last year, in days
    paths = {}
    x, tx, T = sim.bgnbd(ages, **TRUE_PARAMS["bgnbd"], rng=rng, whole_periods=True)
    paths["bgnbd"] = directory / "bgnbd.npz"
    np.savez(paths["bgnbd"], frequency=x, recency=tx, T=T)
    x, tx, T = sim.pareto_nbd(ages, **TRUE_PARAMS["pnbd"], rng=rng, whole_periods=True)
    paths["pnbd"] = directory / "pnbd.npz"
    np.savez(paths["pnbd"], frequency=x, recency=tx, T=T)
    m = np.round(sim.gamma_gamma(x, **TRUE_PARAMS["gg"], rng=rng), 2)  # amounts in cents
    m = np.where(x > 0, np.maximum(m, 0.01), 0.0)
    paths["gg"] = directory / "gg.npz"
    np.savez(paths["gg"], frequency=x, monetary_value=m)
    return paths


def simulate_continuous(
    customers: int, pnbd_customers: int, seed: int, directory: Path
) -> dict[str, Path]:
    """The continuous set: the same processes and parameters, ages uniform in (0, 365) days and
    recencies as drawn (no rounding), so nearly every ``(frequency, recency, T)`` is distinct."""
    from haina.analytics.clv import simulate as sim

    rng = np.random.default_rng(seed + 1)
    paths = {}
    ages = rng.uniform(0.0, 365.0, customers)
    ages = np.where(ages > 0, ages, 365.0)
    x, tx, T = sim.bgnbd(ages, **TRUE_PARAMS["bgnbd"], rng=rng)
    paths["bgnbd"] = directory / "bgnbd_continuous.npz"
    np.savez(paths["bgnbd"], frequency=x, recency=tx, T=T)
    px, ptx, pT = sim.pareto_nbd(ages[:pnbd_customers], **TRUE_PARAMS["pnbd"], rng=rng)
    paths["pnbd"] = directory / "pnbd_continuous.npz"
    np.savez(paths["pnbd"], frequency=px, recency=ptx, T=pT)
    # spend of the purchase counts of a Pareto/NBD population of the full size
    x, _, _ = sim.pareto_nbd(ages, **TRUE_PARAMS["pnbd"], rng=rng)
    m = np.round(sim.gamma_gamma(x, **TRUE_PARAMS["gg"], rng=rng), 2)  # amounts in cents
    m = np.where(x > 0, np.maximum(m, 0.01), 0.0)
    paths["gg"] = directory / "gg_continuous.npz"
    np.savez(paths["gg"], frequency=x, monetary_value=m)
    return paths


def warm_up(directory: Path) -> None:
    """One small fit of each model in a process of its own, so that Numba's on-disk cache holds
    the compiled kernels before anything is timed (the first run after an install compiles)."""
    from haina.analytics.clv import simulate as sim

    rng = np.random.default_rng(0)
    x, tx, T = sim.pareto_nbd(rng.uniform(1.0, 365.0, 2000), **TRUE_PARAMS["pnbd"], rng=rng)
    path = directory / "warm_up.npz"
    np.savez(path, frequency=x, recency=tx, T=T)
    for model in ("bgnbd", "pnbd"):
        run_fit(model, "ours", path, None)
    m = np.where(x > 0, 10.0 + x, 0.0)
    np.savez(path, frequency=x, monetary_value=m)
    run_fit("gg", "ours", path, None)


def log_likelihood_at(model: str, params: list[float], data_path: Path) -> float:
    from haina.analytics.clv import bgnbd, gammagamma, pnbd

    data = np.load(data_path)
    if model == "gg":
        return gammagamma.log_likelihood(params, data["frequency"], data["monetary_value"])
    module = bgnbd if model == "bgnbd" else pnbd
    return module.log_likelihood(params, data["frequency"], data["recency"], data["T"])


def distinct_rows(model: str, data_path: Path) -> int:
    data = np.load(data_path)
    if model == "gg":
        keep = data["frequency"] > 0
        cols = [data["frequency"][keep], data["monetary_value"][keep]]
    else:
        cols = [data["frequency"], data["recency"], data["T"]]
    return int(np.unique(np.stack(cols, axis=1), axis=0).shape[0])


# --------------------------------------------------------------------------------------------
# summary of an order log: Ibis on DuckDB against a pandas groupby


def order_log(rows: int, seed: int):
    import pandas as pd

    rng = np.random.default_rng(seed)
    customers = max(rows // 8, 1)
    start = np.datetime64("2023-01-01T00:00:00", "s")
    seconds = rng.integers(0, 730 * 86400, rows)
    return pd.DataFrame(
        {
            "customer_id": rng.zipf(1.3, rows) % customers,  # a few customers order a lot
            "ordered_at": (start + seconds.astype("timedelta64[s]")).astype("datetime64[us]"),
            "amount": np.round(rng.gamma(2.0, 20.0, rows), 2),
        }
    )


def pandas_summary(orders, observation_end: str):
    """The same definitions as haina.analytics.clv.summary, with a vectorised pandas groupby."""
    import pandas as pd

    end = pd.Timestamp(observation_end)
    df = orders[orders["ordered_at"] < end + pd.Timedelta(days=1)]
    df = df.assign(day=df["ordered_at"].dt.floor("D"))
    periods = df.groupby(["customer_id", "day"], sort=False, as_index=False)["amount"].sum()
    periods["first"] = periods.groupby("customer_id", sort=False)["day"].transform("min")
    by_customer = periods.groupby("customer_id")
    out = pd.DataFrame(
        {
            "first": by_customer["day"].min(),
            "last": by_customer["day"].max(),
            "count": by_customer["day"].size(),
        }
    )
    repeat = periods[periods["day"] > periods["first"]].groupby("customer_id")["amount"].mean()
    return pd.DataFrame(
        {
            "frequency": (out["count"] - 1).astype(float),
            "recency": (out["last"] - out["first"]).dt.days.astype(float),
            "T": (end.normalize() - out["first"]).dt.days.astype(float),
            "monetary_value": repeat.reindex(out.index).fillna(0.0),
        }
    )


def summary_benchmark(rows: int, seed: int, repeats: int = 3) -> dict:
    """Median wall seconds of ``repeats`` runs of each, after one warm-up run of each on a small
    slice (DuckDB's first query in a process also pays for starting the database)."""
    import gc
    import statistics

    from haina.analytics.clv import summary

    orders = order_log(rows, seed)
    end = "2024-12-31"

    def ours(df):
        return summary.summary_data_from_transaction_data(
            df, "customer_id", "ordered_at", "amount", observation_end=end
        )

    ours(orders.iloc[:10_000])
    pandas_summary(orders.iloc[:10_000], end)
    timings: dict[str, list[float]] = {"duckdb": [], "pandas": []}
    for _ in range(repeats):
        for name, run in (("duckdb", ours), ("pandas", lambda df: pandas_summary(df, end))):
            gc.collect()
            started = time.perf_counter()
            result = run(orders)
            timings[name].append(time.perf_counter() - started)
            if name == "duckdb":
                got = result
            else:
                expected = result.sort_index()
    same = list(got.index) == list(expected.index) and all(
        np.allclose(got[c].to_numpy(float), expected[c].to_numpy(float), rtol=1e-9, atol=1e-9)
        for c in ("frequency", "recency", "T", "monetary_value")
    )
    duckdb_s = statistics.median(timings["duckdb"])
    pandas_s = statistics.median(timings["pandas"])
    return {
        "rows": rows,
        "customers": len(got),
        "duckdb_s": round(duckdb_s, 3),
        "pandas_s": round(pandas_s, 3),
        "ratio": round(pandas_s / duckdb_s, 2),
        "same_result": bool(same),
        "runs": {k: [round(v, 3) for v in vs] for k, vs in timings.items()},
        "note": "median of 3 runs after a warm-up; input is a pandas DataFrame in memory for both; "
        "DuckDB uses all cores, pandas one",
    }


# --------------------------------------------------------------------------------------------


def fit_both(model: str, path: Path, args, console) -> dict:
    """Ours and lifetimes on one data file, each in a fresh process; the entry of the results."""
    ours = run_fit(model, "ours", path, None)
    console.print(f"  {ours['seconds']:.2f} s; fitting with lifetimes ...")
    theirs = run_fit(model, "lifetimes", path, args.lifetimes_maxiter)
    console.print(f"  {theirs['seconds']:.2f} s")
    ll_ours = log_likelihood_at(model, ours["params"], path)
    ll_theirs = log_likelihood_at(model, theirs["params"], path)
    entry = {
        "ours_s": round(ours["seconds"], 3),
        "lifetimes_s": round(theirs["seconds"], 3),
        "ratio": round(theirs["seconds"] / ours["seconds"], 1),
        "ll_diff_rel": (ll_ours - ll_theirs) / abs(ll_theirs),
        "peak_mb": round(ours["peak_mb"], 1),
        "lifetimes_peak_mb": round(theirs["peak_mb"], 1),
        "rows": ours["rows"],
        "distinct_rows": distinct_rows(model, path),
        "ll_ours": ll_ours,
        "ll_lifetimes": ll_theirs,
        "params_ours": dict(zip(TRUE_PARAMS[model], ours["params"], strict=True)),
        "params_lifetimes": dict(zip(TRUE_PARAMS[model], theirs["params"], strict=True)),
        "params_true": TRUE_PARAMS[model],
        "target_ratio": TARGET_RATIO[model],
        "grouped": ours.get("grouped", False),
        "kernels": ours.get("kernels"),
        "import_s": round(ours["import_s"], 3),
        "lifetimes_import_s": round(theirs["import_s"], 3),
    }
    if args.lifetimes_grouped:
        console.print("  fitting with lifetimes on distinct rows with weights ...")
        grouped = run_fit(model, "lifetimes", path, args.lifetimes_maxiter, grouped=True)
        entry["lifetimes_grouped_s"] = round(grouped["seconds"], 3)
        entry["ratio_vs_lifetimes_grouped"] = round(grouped["seconds"] / ours["seconds"], 1)
        ll_grouped = log_likelihood_at(model, grouped["params"], path)
        entry["ll_diff_rel_vs_lifetimes_grouped"] = (ll_ours - ll_grouped) / abs(ll_grouped)
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100k customers, 1M order rows")
    parser.add_argument("--customers", type=int, help="override the number of simulated customers")
    parser.add_argument("--orders", type=int, help="override the number of order rows")
    parser.add_argument("--lifetimes-maxiter", type=int, help="cap lifetimes' optimiser iterations")
    parser.add_argument(
        "--lifetimes-grouped",
        action="store_true",
        help="also time lifetimes on the distinct rows with weights",
    )
    parser.add_argument("--models", default="bgnbd,pnbd,gg")
    parser.add_argument("--datasets", default="day,continuous")
    parser.add_argument(
        "--continuous-customers", type=int,
        help="customers of the continuous set (BG/NBD, Gamma-Gamma)",
    )
    parser.add_argument(
        "--continuous-pnbd-customers", type=int, help="customers of the continuous Pareto/NBD set"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "clv.json")
    parser.add_argument(
        "--worker", nargs=4, metavar=("MODEL", "IMPL", "DATA", "OUT"), help=argparse.SUPPRESS
    )
    parser.add_argument("--grouped", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker, maxiter=args.lifetimes_maxiter, grouped=args.grouped)
        return

    from rich.console import Console
    from rich.table import Table

    # a log or a pipe gets the whole table (Rich would fit it into 80 columns)
    console = Console() if sys.stdout.isatty() else Console(width=170)
    customers = args.customers or (100_000 if args.quick else 1_000_000)
    order_rows = args.orders or (1_000_000 if args.quick else 10_000_000)
    models = [m for m in args.models.split(",") if m]
    datasets = [d for d in args.datasets.split(",") if d]
    continuous_customers = args.continuous_customers or (100_000 if args.quick else 1_000_000)
    continuous_pnbd = args.continuous_pnbd_customers or (10_000 if args.quick else 100_000)
    results: dict = {
        "customers": customers,
        "continuous_customers": continuous_customers,
        "continuous_pnbd_customers": continuous_pnbd,
        "quick": args.quick,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "models": {},
    }
    import lifetimes
    import scipy

    results["versions"] = {
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "lifetimes": lifetimes.__version__,
    }
    results["lifetimes_settings"] = (
        "defaults" if args.lifetimes_maxiter is None else f"maxiter={args.lifetimes_maxiter}"
    )
    results["ll_note"] = (
        "both log-likelihoods computed with haina's log-likelihood function on the same data"
    )

    with tempfile.TemporaryDirectory(prefix="haina-clv-") as tmp:
        console.print("warming up (Numba's on-disk cache of the compiled kernels) ...")
        warm_up(Path(tmp))
        results["datasets"] = {}
        for dataset in datasets:
            if dataset == "day":
                console.print(f"simulating {customers:,} customers in whole days ...")
                paths = simulate(customers, args.seed, Path(tmp))
                sizes = {m: customers for m in TRUE_PARAMS}
                description = (
                    "ages of 1-365 whole days, recency rounded up to the day of the last purchase"
                )
            else:
                console.print(
                    f"simulating {continuous_customers:,} customers in continuous time "
                    f"({continuous_pnbd:,} for Pareto/NBD) ..."
                )
                paths = simulate_continuous(
                    continuous_customers, continuous_pnbd, args.seed, Path(tmp)
                )
                sizes = {"bgnbd": continuous_customers, "pnbd": continuous_pnbd,
                         "gg": continuous_customers}
                description = (
                    "ages uniform in (0, 365) days, recencies as drawn: nearly every row distinct"
                )
            entries = {}
            for model in models:
                console.print(f"[bold]{dataset} {model}[/]: fitting with haina ...")
                entries[model] = fit_both(model, paths[model], args, console)
                entries[model]["customers"] = sizes[model]
            results["datasets"][dataset] = {"description": description, "models": entries}
            if dataset == "day":
                results["models"] = entries

    console.print(f"summarising {order_rows:,} order rows ...")
    results["summary"] = summary_benchmark(order_rows, args.seed)

    table = Table(title=f"Lifecycle models against lifetimes {lifetimes.__version__}")
    for col in (
        "data",
        "model",
        "customers",
        "distinct rows",
        "ours s",
        "lifetimes s",
        "ratio",
        "target",
        "LL diff (rel)",
        "peak MB ours",
        "peak MB lifetimes",
        "grouped",
    ):
        table.add_column(col, justify="left" if col in ("data", "model") else "right")
    for dataset, block in results.get("datasets", {}).items():
        for model, e in block["models"].items():
            table.add_row(
                dataset,
                model,
                f"{e['rows']:,}" + ("" if model != "gg" else f" of {e['customers']:,}"),
                f"{e['distinct_rows']:,}",
                f"{e['ours_s']:.2f}",
                f"{e['lifetimes_s']:.2f}",
                f"{e['ratio']:.1f}",
                f">= {e['target_ratio']}",
                f"{e['ll_diff_rel']:+.2e}",
                f"{e['peak_mb']:.0f}",
                f"{e['lifetimes_peak_mb']:.0f}",
                "yes" if e["grouped"] else "no",
            )
    console.print(table)
    s = results["summary"]
    console.print(
        f"summary of {s['rows']:,} orders ({s['customers']:,} customers): "
        f"DuckDB/Ibis {s['duckdb_s']:.2f} s, pandas groupby {s['pandas_s']:.2f} s, "
        f"ratio {s['ratio']:.2f}, same result: {s['same_result']}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

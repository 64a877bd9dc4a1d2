"""The experiment grid as Ray tasks, and the plan of a cluster run.

:func:`run_on_ray` is what ``run_grid(..., executor="ray")`` (and ``leukcore reproduce
--executor ray [--address ADDR]``) calls.  Each pending ``(paper, experiment)`` becomes one Ray
task that calls :func:`leukcore.runs.experiments.run_experiment` on a worker, writing the record and
its predictions into a *worker-local* temporary folder, and returns their text (plus the final
weights kept for Grad-CAM) to the driver.  The driver writes them atomically under its own
results directory, so the nodes share no filesystem for results.  A record written this way
is the record ``executor="local"`` writes (same seed, same device: same metrics, same
predictions; only ``wall_time_s``, ``written_at`` and the timing fields of ``history`` differ).

Resources per task: ``num_gpus=1`` when the run is on CUDA (``gpu_fraction`` instead, e.g.
0.25 to pack four small models on one GPU), ``num_cpus=1`` otherwise.  A task whose worker
process dies (killed, out of memory, node lost) is retried up to ``max_retries`` times
(``retry_exceptions=False``: an exception raised by the experiment itself is a result, not a
crash, and is not retried); on a retry on the same node a profile with checkpoints resumes from
the killed attempt's last epoch.  One failed task is recorded in ``result.failures`` as
``"Type: message"`` and the others go on.

Threads.  Ray starts CPU workers with ``OMP_NUM_THREADS`` set to the task's CPUs (1).  On the
CPU a result is bit-identical only at the same torch thread count (see :mod:`leukcore.engine`),
so a worker runs each experiment with the driver's torch intra-op thread count (passed with
the task; override with ``$LEUKCORE_RAY_THREADS``) and restores its own afterwards.

Credentials.  Nothing from the environment is put in a record; in addition every returned text
is scrubbed on the worker and again on the driver: the values of environment variables whose
name looks like a credential (``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``, ``*_KEY``, ``*AUTH*``,
...) and Ray's own authentication token (Ray >= 2.5x turns token authentication on for a local
instance and keeps the token in ``~/.ray/auth_token``) are replaced by ``<redacted>``, and record
keys that look like one are dropped.  The driver's error messages are scrubbed the same way.

Test hook (documented, inert unless set): ``$LEUKCORE_RAY_TEST_KILL=MARKER[|PAPER/EXPERIMENT]``
on the driver makes the first attempt of a task (of that experiment only, when given) kill its
own worker process with SIGKILL when training starts (after its data were loaded and its model
built), once per run: the attempt that creates ``MARKER`` dies, later attempts run normally.

Planning: :func:`planning_table` (``leukcore ray plan``) counts experiments
and trainings per paper at every profile and estimates GPU-hours on one H100 at ``paper``.

``ray`` is imported only inside the functions that need it, never at ``import leukcore``.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

RAY_INSTALL_HINT = ('the ray executor needs Ray, which is not installed: pip install -e ".[ray]" '
                    '(from the leukcore checkout; or pip install "ray>=2.9")')
#: CPUs of a local Ray instance (default: os.cpu_count()).
NUM_CPUS_ENV = "LEUKCORE_RAY_NUM_CPUS"
#: torch intra-op threads per CPU task (default: the driver's torch.get_num_threads()).
THREADS_ENV = "LEUKCORE_RAY_THREADS"
#: Test hook: ``MARKER[|PAPER/EXPERIMENT]`` (see the module docstring).
TEST_KILL_ENV = "LEUKCORE_RAY_TEST_KILL"
REDACTED = "<redacted>"


class RayNotInstalled(ImportError, ValueError):
    """Ray is missing.  A ValueError too, so the command line prints its one-line hint."""


def import_ray():
    """``import ray``, or :class:`RayNotInstalled` saying how to install it."""
    try:
        import ray
    except ImportError as e:
        raise RayNotInstalled(RAY_INSTALL_HINT) from e
    return ray


# --------------------------------------------------------------------------------------------
# Credentials
# --------------------------------------------------------------------------------------------

_SECRET_ENV_NAME = re.compile(r"TOKEN|SECRET|PASSW|CREDENTIAL|AUTH|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|_KEY$|^KEY$",
                              re.IGNORECASE)
_SECRET_RECORD_KEY = re.compile(r"^RAY_|TOKEN|SECRET|PASSW|CREDENTIAL|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY",
                                re.IGNORECASE)
_MIN_SECRET_LEN = 8


def env_secrets(environ: dict | None = None) -> list[str]:
    """Values of environment variables whose name looks like a credential, longest first.

    A name matches ``TOKEN|SECRET|PASSW|CREDENTIAL|AUTH|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|_KEY$``
    (case-insensitive); values shorter than 8 characters are ignored (too common to be secrets).
    """
    env = os.environ if environ is None else environ
    vals = {v for k, v in env.items() if _SECRET_ENV_NAME.search(k) and v and len(v) >= _MIN_SECRET_LEN}
    return sorted(vals, key=lambda v: (-len(v), v))


def ray_token_secrets() -> list[str]:
    """Ray's own authentication token when it sits in a file (``$RAY_AUTH_TOKEN_PATH`` or
    ``~/.ray/auth_token``, which ``ray.init`` creates for a local instance); only kept in memory
    to redact it.  ``$RAY_AUTH_TOKEN`` is covered by :func:`env_secrets`."""
    out = []
    for p in (os.environ.get("RAY_AUTH_TOKEN_PATH"), Path.home() / ".ray" / "auth_token"):
        try:
            v = Path(p).read_text().strip() if p else ""
        except OSError:
            continue
        if len(v) >= _MIN_SECRET_LEN:
            out.append(v)
    return out


def all_secrets() -> list[str]:
    """:func:`env_secrets` and :func:`ray_token_secrets`, longest first."""
    return sorted(set(env_secrets()) | set(ray_token_secrets()), key=lambda v: (-len(v), v))


def scrub_text(text: str, secrets: list[str]) -> str:
    """``text`` with every occurrence of every secret replaced by ``<redacted>``."""
    for s in secrets:
        if s in text:
            text = text.replace(s, REDACTED)
    return text


def scrub_record(obj: Any, secrets: list[str]) -> Any:
    """A copy of a record with credential-like keys dropped and secret values redacted."""
    if isinstance(obj, dict):
        return {k: scrub_record(v, secrets) for k, v in obj.items()
                if not (isinstance(k, str) and _SECRET_RECORD_KEY.search(k))}
    if isinstance(obj, list):
        return [scrub_record(v, secrets) for v in obj]
    if isinstance(obj, str):
        return scrub_text(obj, secrets)
    return obj


def credential_findings(obj: Any, secrets: list[str] = (), path: str = "") -> list[str]:
    """Where a record holds a credential-like key, a secret value or a ``RAY_*`` string (empty: clean)."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(k, str) and _SECRET_RECORD_KEY.search(k):
                out.append(f"{path}/{k}: key")
            out += credential_findings(v, secrets, f"{path}/{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += credential_findings(v, secrets, f"{path}[{i}]")
    elif isinstance(obj, str):
        if any(s in obj for s in secrets):
            out.append(f"{path}: secret value")
        if re.search(r"\bRAY_[A-Z_]+", obj):
            out.append(f"{path}: RAY_ variable")
    return out


# --------------------------------------------------------------------------------------------
# The task (runs on a worker)
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _working_dir(path: str | None):
    """Run in the driver's working directory when it exists here (same data-root fallbacks)."""
    prev = os.getcwd()
    if path and os.path.isdir(path):
        os.chdir(path)
    try:
        yield
    finally:
        os.chdir(prev)


def _parse_kill_hook(value: str | None) -> tuple[str, str | None] | None:
    if not value:
        return None
    marker, _, target = value.partition("|")
    return marker, (target or None)


@contextlib.contextmanager
def _kill_hook(hook: tuple[str, str | None] | None, paper: str, experiment: str):
    """Test hook: the first attempt SIGKILLs its own worker when training starts (see module doc)."""
    if hook is None or (hook[1] is not None and hook[1] != f"{paper}/{experiment}"):
        yield
        return
    marker = Path(hook[0])
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:  # not the first attempt
        yield
        return
    os.write(fd, json.dumps({"paper": paper, "experiment": experiment, "pid": os.getpid(),
                             "killed_at": "start of training"}).encode())
    os.fsync(fd)
    os.close(fd)
    from .. import engine as train

    real_fit = train.fit

    def fit_then_die(*a, **kw):
        os.kill(os.getpid(), signal.SIGKILL)
        return real_fit(*a, **kw)  # not reached

    train.fit = fit_then_die
    try:
        yield
    finally:
        train.fit = real_fit


def _work_dir(run_id: str, paper: str, experiment: str, profile: str) -> Path:
    """A worker-local folder, stable across retries of one task within one run (so they resume)."""
    key = hashlib.sha256(f"{run_id}/{paper}/{experiment}/{profile}".encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "leukcore-ray" / key


def execute_task(paper: str, experiment: str, profile: str, *, data_root: str | None, device: str, seed: int,
                 run_id: str, cwd: str | None = None, threads: int | None = None,
                 kill_hook: tuple[str, str | None] | None = None) -> dict:
    """Run one experiment here, into a worker-local folder, and return what the driver writes.

    Returns ``{"record": JSON text, "predictions": CSV text, "artifacts": {relative path: bytes}}``
    where the artifacts are the kept final weights (``checkpoints/<exp>/fold0/final.pt``).
    """
    from .experiments import run_experiment
    from .records import record_path, run_name
    from ..engine import intra_op_threads

    work = _work_dir(run_id, paper, experiment, profile)
    with _working_dir(cwd), intra_op_threads(threads), _kill_hook(kill_hook, paper, experiment):
        rec = run_experiment(paper, experiment, profile, data_root=data_root, device=device, seed=seed,
                             results_dir=work, progress=False, write=True)
    path = Path(rec["_path"])
    out = {"record": path.read_text(), "predictions": None, "artifacts": {}}
    written = json.loads(out["record"])
    if written.get("predictions"):
        out["predictions"] = path.with_name(written["predictions"]).read_text()
    if (written.get("code") or {}).get("diff"):  # the uncommitted code the worker ran, kept beside its record
        out["diff"] = path.with_name(written["code"]["diff"]).read_text()
    base = record_path(paper, profile, experiment, work).parent
    ckpt = base / "checkpoints" / run_name(experiment, seed)
    if ckpt.is_dir():
        for f in sorted(ckpt.rglob("*")):
            if f.is_file() and f.name != "last.pt" and not f.name.startswith("."):
                out["artifacts"][f.relative_to(base).as_posix()] = f.read_bytes()
    shutil.rmtree(work, ignore_errors=True)
    with contextlib.suppress(OSError):
        work.parent.rmdir()  # only when empty (other tasks of this node may be running)
    secrets = all_secrets()
    out["record"] = json.dumps(scrub_record(json.loads(scrub_text(out["record"], secrets)), secrets),
                               indent=1, sort_keys=True) + "\n"
    if out["predictions"] is not None:
        out["predictions"] = scrub_text(out["predictions"], secrets)
    return out


# --------------------------------------------------------------------------------------------
# The driver
# --------------------------------------------------------------------------------------------


def local_num_cpus() -> int:
    """CPUs of a local Ray instance: ``$LEUKCORE_RAY_NUM_CPUS``, else ``os.cpu_count()``."""
    v = os.environ.get(NUM_CPUS_ENV)
    return max(1, int(v)) if v else (os.cpu_count() or 1)


def task_resources(device: str, gpu_fraction: float | None = None) -> dict:
    """Ray resources of one experiment: a GPU (or ``gpu_fraction`` of one) on CUDA, else one CPU."""
    if device.startswith("cuda"):
        frac = 1.0 if gpu_fraction is None else float(gpu_fraction)
        if not 0 < frac <= 1:
            raise ValueError(f"gpu_fraction must be in (0, 1], got {gpu_fraction}")
        return {"num_gpus": frac, "num_cpus": 1}
    return {"num_cpus": 1}


def _cluster_device(ray, device: str) -> str:
    """``auto`` means CUDA when the cluster has GPUs (the workers have them, not the driver)."""
    if device != "auto":
        return device
    return "cuda" if ray.cluster_resources().get("GPU", 0) > 0 else "cpu"


def driver_threads() -> int | None:
    if os.environ.get(THREADS_ENV):
        return int(os.environ[THREADS_ENV])
    try:
        import torch
    except ImportError:
        return None
    return torch.get_num_threads()


def _error_text(err: BaseException) -> str:
    """``"Type: message"`` of a task failure (the experiment's own exception when it raised one)."""
    cause = getattr(err, "cause", None)
    if isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {cause}"
    msg = str(err).strip().splitlines()
    return f"{type(err).__name__}: {msg[0] if msg else ''}"


def write_task_output(out: dict, results_dir=None) -> dict:
    """Write a task's predictions, artifacts and record (in that order, each atomically); return the record."""
    from ..files import atomic_write_bytes, atomic_write_text
    from .records import read_record, record_path, write_record

    secrets = all_secrets()
    rec = scrub_record(json.loads(scrub_text(out["record"], secrets)), secrets)
    path = record_path(rec["paper"], rec["profile"], rec["experiment"], results_dir, rec.get("seed") or 0)
    if out.get("predictions") is not None:
        # Verbatim: the file name and SHA-256 in the record are those the worker's write_record gave it.
        text = scrub_text(out["predictions"], secrets)
        if text != out["predictions"] and rec.get("predictions_sha256"):
            rec["predictions_sha256"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
        atomic_write_text(path.with_name(rec["predictions"]), text)
    if out.get("diff") is not None and (rec.get("code") or {}).get("diff"):
        atomic_write_text(path.with_name(rec["code"]["diff"]), out["diff"])  # verbatim: its name carries its hash
    for rel, blob in (out.get("artifacts") or {}).items():
        dest = path.parent / rel
        if path.parent.resolve() not in dest.resolve().parents:
            raise ValueError(f"artifact path {rel!r} leaves the results folder")
        atomic_write_bytes(dest, blob)
    write_record(rec, root=results_dir)
    return read_record(path)


def run_on_ray(todo: list[tuple[str, str]], profile: str, result, *, address: str | None = None,
               gpu_fraction: float | None = None, max_retries: int = 2, progress: bool = True,
               data_root: str | None = None, device: str = "auto", seed: int = 0, results_dir=None):
    """Run the ``(paper, experiment)`` pairs of ``todo`` as Ray tasks; fill ``result`` (a GridResult).

    Without ``address`` a local Ray instance is started (``$LEUKCORE_RAY_NUM_CPUS`` CPUs, default
    all) and shut down at the end; with one, the driver joins that cluster.  If Ray is already
    initialised in this process, that instance is used and left running.  ``result.records[(p, e)]``
    is the record written under ``results_dir``; ``result.failures[(p, e)]`` is ``"Type: message"``.
    """
    ray = import_ray()
    from tqdm.auto import tqdm

    if not todo:
        return result
    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False, logging_level="WARNING")
        else:
            ray.init(num_cpus=local_num_cpus(), include_dashboard=False, log_to_driver=False,
                     logging_level="WARNING")
        started = True
    secrets = all_secrets()
    try:
        dev = _cluster_device(ray, device)
        res = task_resources(dev, gpu_fraction)
        remote = ray.remote(max_retries=max_retries, retry_exceptions=False, **res)(execute_task)
        run_id = uuid.uuid4().hex
        kw = dict(data_root=None if data_root is None else os.path.abspath(data_root), device=dev, seed=seed,
                  run_id=run_id, cwd=os.getcwd(), threads=None if dev.startswith("cuda") else driver_threads(),
                  kill_hook=_parse_kill_hook(os.environ.get(TEST_KILL_ENV)))
        if kw["data_root"] is None and os.environ.get("LEUKCORE_DATA"):
            kw["data_root"] = os.path.abspath(os.environ["LEUKCORE_DATA"])
        refs = {remote.remote(p, e, profile, **kw): (p, e) for p, e in todo}
        bar = tqdm(total=len(refs), desc=f"experiments ({profile}, ray)", disable=not progress)
        waiting = list(refs)
        try:
            while waiting:
                done, waiting = ray.wait(waiting, num_returns=1)
                for ref in done:
                    p, e = refs[ref]
                    try:
                        result.records[(p, e)] = write_task_output(ray.get(ref), results_dir)
                    except Exception as err:  # noqa: BLE001 - reported in the summary, others go on
                        result.failures[(p, e)] = scrub_text(_error_text(err), secrets)
                        print(scrub_text(f"{p}/{e} failed:\n{err}", secrets), file=sys.stderr)
                    bar.set_postfix_str(f"{p}/{e}")
                    bar.update(1)
        except BaseException:
            for ref in waiting:
                ray.cancel(ref, force=True)
            raise
        finally:
            bar.close()
    finally:
        if started:
            ray.shutdown()
    return result


# --------------------------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------------------------

#: Assumed training throughput on one H100 (images/s at 224x224, forward + backward, bf16 autocast,
#: channels-last, the uint8-on-GPU data path of leukcore.engine), per model.  Round numbers from
#: public A100/H100 training benchmarks of the torchvision/timm models (ResNet-50 ~3000 img/s on an
#: H100), scaled by FLOPs for the others; the study's own small CNNs are assumed as fast as a
#: GoogLeNet.  Replaced by measured values when a benchmark record exists.
H100_TRAIN_IMAGES_PER_S_224 = {
    "alexnet": 12000, "alnet": 10000, "cnn_lstm": 6000, "dscnet": 5000, "googlenet": 5000,
    "resnet50": 3000, "darknet53": 2000, "retinanet_cls": 2500, "centernet_cls": 2500,
    "vgg16": 1500, "inception_v3": 2500, "xception": 1800, "inception_resnet_v2": 900, "xincept": 1200,
}
#: A forward-only image (validation, test, feature extraction) costs this fraction of a training image.
EVAL_COST = 1 / 3
#: Fixed cost of one training (decode + cache the images, build the model, bootstrap the metrics), s.
OVERHEAD_S = 60.0
#: Images of each dataset as the protocols load them (published counts; see the ledgers).
DATASET_IMAGES = {"taleqani-all": 3256, "cnmc-2019": 10661, "leukemia-0.2": 20000, "multicancer-all": 20000,
                  "pbc-lymphocytes": 1214}
#: Published folds of a dataset (C-NMC 2019's training data come in three).
DATASET_FOLDS = {"cnmc-2019": 3}
BENCH_RECORD = Path("bench") / "latest.json"


def _bench_rates(bench: dict | None) -> tuple[dict[str, tuple[float, int]], str | None]:
    """``{model: (images/s, at image size)}`` from a benchmark record, and its device.

    Accepted shapes: ``{"models": {name: {"images_per_s" | "train_images_per_s": x, "image_size": s}}}``,
    ``{"results" | "models": [{"model": name, "images_per_s": x, "image_size": s}, ...]}`` or
    ``{"images_per_s": {name: x}}`` (at 224).
    """
    if not bench:
        return {}, None
    rows = []
    models = bench.get("models", bench.get("results"))
    if isinstance(models, dict):
        rows = [{"model": k, **(v if isinstance(v, dict) else {"images_per_s": v})} for k, v in models.items()]
    elif isinstance(models, list):
        rows = [r for r in models if isinstance(r, dict)]
    if isinstance(bench.get("images_per_s"), dict):
        rows += [{"model": k, "images_per_s": v} for k, v in bench["images_per_s"].items()]
    out = {}
    for r in rows:
        rate = r.get("train_images_per_s", r.get("images_per_s"))
        if r.get("model") and isinstance(rate, (int, float)) and rate > 0:
            out[str(r["model"])] = (float(rate), int(r.get("image_size") or 224))
    return out, bench.get("device") or bench.get("machine")


def load_bench_record(path=None) -> dict | None:
    """The benchmark record (``<results>/bench/latest.json``), or None when there is none."""
    from .records import results_dir

    p = Path(path) if path else results_dir() / BENCH_RECORD
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def _sizes(proto: dict, exp) -> tuple[float, float, float]:
    """(train, val, test) images of one training at the paper profile (published dataset sizes)."""
    from .protocols import protocol_folds, task_spec

    ds = task_spec(proto, exp)["dataset"]["id"]
    n = DATASET_IMAGES.get(ds, 0)
    split = proto["split"]
    if split["kind"] == "kfold":
        k = int(split["k"])
        return n * (k - 1) / k, 0.0, n / k
    if split["kind"] == "published_folds":
        n = n / DATASET_FOLDS.get(ds, 1)
        fr = split["within_fold"]
    else:
        fr = split["fractions"]
        k = protocol_folds(split, exp)
        if k is not None:
            dev = n * (1 - fr.get("test", 0))
            return dev * (k - 1) / k, dev / k, n * fr.get("test", 0)
    return n * fr.get("train", 0), n * fr.get("val", 0), n * fr.get("test", 0)


def experiment_gpu_seconds(paper: str, exp, bench: dict | None = None) -> tuple[float, str]:
    """Estimated H100 seconds of one experiment at the ``paper`` profile, and the rate's source.

    ``s = trainings * (epochs * (n_train + EVAL_COST * n_val) + EVAL_COST * n_test) / r + trainings * OVERHEAD_S``
    with ``r`` the model's training images/s scaled to the protocol's image size by pixel count,
    ``r = r_s * (s / size)^2``.  The feature route trains its backbone (from scratch: its ImageNet
    weights are not used there) and the fusion route its heads, both counted as a training.
    """
    from .profiles import get_profile
    from .protocols import experiment_settings, read_protocol, trainings
    from .routes import get_route

    prof = get_profile("paper")
    proto = read_protocol(paper)
    n_tr = trainings(paper, exp, prof)
    if n_tr == 0:
        return 0.0, "none"
    settings = experiment_settings(paper, exp, prof)
    size = settings["image_size"]
    epochs = int(settings["train"].get("epochs", 1))
    model = get_route(exp.route).network(exp)
    measured, _ = _bench_rates(bench)
    if model in measured:
        rate, at = measured[model]
        source = "benchmark"
    else:
        rate, at = H100_TRAIN_IMAGES_PER_S_224.get(model, 2000), 224
        source = "assumed"
    rate = rate * (at / size) ** 2
    tr, va, te = _sizes(proto, exp)
    per = (epochs * (tr + EVAL_COST * va) + EVAL_COST * te) / rate + OVERHEAD_S
    return n_tr * per, source


def planning_table(bench_record=None) -> "pd.DataFrame":
    """Experiments and trainings per paper at each profile, and estimated H100 GPU-hours at ``paper``.

    ``bench_record``: a benchmark record (dict) or its path; default ``results/bench/latest.json``
    when it exists.  Models it measured use its images/s, the others
    :data:`H100_TRAIN_IMAGES_PER_S_224`; the ``throughput`` column says which.  ``longest_h`` is the
    longest single experiment: about the wall time of the whole run on a cluster with at least as
    many GPUs as experiments.  A final ``total`` row sums the columns.
    """
    import pandas as pd

    from .profiles import get_profile, list_profiles
    from .protocols import list_experiments, list_papers, trainings

    bench = bench_record if isinstance(bench_record, dict) else load_bench_record(bench_record)
    _, bench_device = _bench_rates(bench)
    rows = []
    for paper in list_papers():
        exps = list_experiments(paper, "paper")
        row: dict[str, Any] = {"paper": paper, "experiments": len(exps)}
        for prof in list_profiles():
            row[f"trainings_{prof}"] = sum(trainings(paper, e, get_profile(prof)) for e in exps)
        secs, sources = [], set()
        for e in exps:
            s, src = experiment_gpu_seconds(paper, e, bench)
            secs.append(s)
            if src != "none":
                sources.add(src)
        row["gpu_hours_h100_paper"] = round(sum(secs) / 3600, 1)
        row["longest_h"] = round(max(secs) / 3600, 2)
        src = "/".join(sorted(sources))
        row["throughput"] = f"{src} ({bench_device})" if "benchmark" in sources and bench_device else src
        rows.append(row)
    df = pd.DataFrame(rows)
    total = {c: df[c].sum() for c in df.columns if c.startswith(("experiments", "trainings", "gpu_hours"))}
    total.update(paper="total", longest_h=df["longest_h"].max(),
                 throughput="/".join(sorted({s for v in df["throughput"] for s in v.split("/")})))
    df = pd.concat([df, pd.DataFrame([total])], ignore_index=True)
    df["gpu_hours_h100_paper"] = df["gpu_hours_h100_paper"].round(1)
    return df

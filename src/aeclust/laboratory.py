"""The bottleneck laboratory of "Walking the tightrope" as Python pieces: train a grid of
CAEs that differ only in their bottleneck (:func:`train_grid`), measure their codes
(:func:`analyse_grid`: linear probes, clustering, SVCCA) and check the paper's six
findings on the measurements (:func:`findings`). ``aeclust bottleneck``
(:mod:`aeclust.bottleneck`) runs them and writes the figures and the report.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from .cluster import build_clusterer, build_reducer
from .errors import ConfigError
from .estimators import AEClusterer
from .metrics import cluster_acc, nmi
from .nn.bottleneck import bottleneck_shape
from .probes import linear_probe
from .svcca import similarity_matrix
from .training import apply_batched

log = logging.getLogger(__name__)


def parse_compression(value) -> float:
    """A compression c from 0.25, "0.25" or "1/4"; in (0, 1]."""
    try:
        c = float(Fraction(str(value).strip()))
    except (ValueError, ZeroDivisionError):
        raise ConfigError(
            f"A compression must be a number or a fraction like 1/16; got {value!r}."
        ) from None
    if not 0 < c <= 1:
        raise ConfigError(f"A compression is a share of the input in (0, 1]; got {value!r}.")
    return c


def parse_grid(sizes, compressions, levels: int = 5) -> list[tuple[int, float]]:
    """The (size, compression) pairs of the grid, sizes outer, from lists or "1,2,3" and
    "1/64,1/16" strings."""

    def items(value):
        if isinstance(value, str):
            return [v for v in value.split(",") if v.strip()]
        return list(value)

    try:
        size_list = [int(str(s).strip()) for s in items(sizes)]
    except ValueError:
        raise ConfigError(f"sizes must be whole numbers like 1,2,3; got {sizes!r}.") from None
    comps = [parse_compression(c) for c in items(compressions)]
    if not size_list or not comps:
        raise ConfigError("The grid needs at least one size and one compression.")
    for s in size_list:
        if not 1 <= s <= levels:
            raise ConfigError(
                f"size {s} is not in 1..{levels}: eq. 5's i makes the bottleneck 1/2^({levels} "
                f"- i + 1) of the side with levels={levels}."
            )
    if len(set(size_list)) < len(size_list) or len(set(comps)) < len(comps):
        raise ConfigError(
            f"The grid lists a size or compression twice: {sizes!r}, {compressions!r}."
        )
    return [(s, c) for s in size_list for c in comps]


def config_name(code_shape: tuple[int, int, int]) -> str:
    """The paper's label of a bottleneck: "(height=width)-(channels)", e.g. "4-16"
    ("4x3-16" when not square)."""
    c, h, w = code_shape
    return f"{h}-{c}" if h == w else f"{h}x{w}-{c}"


def check_grid_images(image_shape, grid, levels: int) -> None:
    """Refuse a grid whose bottleneck channels would be rounded away from the compression."""
    for size, comp in grid:
        shape = bottleneck_shape(image_shape, size, comp, levels)
        exact = comp * image_shape[0] * 4 ** (levels - size + 1)
        if abs(shape[0] - exact) > 1e-9:
            raise ConfigError(
                f"compression {Fraction(comp).limit_denominator()} at size {size} needs "
                f"{exact:g} bottleneck channels for {image_shape[0]}-channel images (eq. 6); "
                "choose compressions that give whole channel counts, e.g. 1/64, 1/16, 1/4, 1."
            )


def train_grid(
    X_train, X_test, grid, *, epochs: int = 30, batch_size: int = 64, lr: float = 1e-3,
    levels: int = 5, blocks: int = 2, n_clusters: int = 10, eval_train: int = 2000,
    seed: int = 0, device: str = "auto", verbose: bool = False, folder=None,
    resume: bool = False,
) -> list[dict]:  # fmt: skip
    """Train one :class:`~aeclust.nn.BottleneckCAE` per (size, compression) of ``grid``,
    each from the same seed, on ``X_train``; after every epoch the MSE on ``X_test`` and
    on a fixed sample of ``eval_train`` training images is logged (eval mode). Each is an
    :class:`~aeclust.AEClusterer` (k-means with ``n_clusters`` on its training codes).

    ``folder``: where each configuration checkpoints (``checkpoints/<name>``) and is saved
    when done (``models/<name>``); with ``resume``, saved configurations are loaded and
    the others continue from their checkpoints. Returns one dict per configuration:
    name, size, compression, code_shape, estimator.
    """
    check_grid_images(tuple(X_train.shape[1:]), grid, levels)
    pick = np.random.default_rng(seed).permutation(len(X_train))[: min(eval_train, len(X_train))]
    eval_sets = {"train": X_train[np.sort(pick)], "test": X_test}
    results = []
    for i, (size, comp) in enumerate(grid):
        shape = bottleneck_shape(tuple(X_train.shape[1:]), size, comp, levels)
        name = config_name(shape)
        folder_ = Path(folder) if folder else None
        saved = folder_ / "models" / name if folder_ else None
        if resume and saved is not None and (saved / "model.json").is_file():
            log.info("%s: trained before, loaded from %s", name, saved)
            est = AEClusterer.load(saved)
        else:
            t0 = time.perf_counter()
            ckpt = folder_ / "checkpoints" / name if folder_ else None
            est = AEClusterer(
                autoencoder="bottleneck-cae", clusterer="kmeans", n_clusters=n_clusters,
                autoencoder_params={"size": size, "compression": comp, "levels": levels,
                                    "blocks": blocks},
                epochs=epochs, batch_size=batch_size, lr=lr, device=device,
                random_state=seed, verbose=verbose, checkpoint=str(ckpt) if ckpt else None,
            )  # fmt: skip
            est.fit(X_train, resume=ckpt if resume and ckpt and ckpt.is_dir() else None,
                    eval_sets=eval_sets)  # fmt: skip
            est.set_params(checkpoint=None)
            if saved is not None:
                est.save(saved)
            last = est.history_[-1] if est.history_ else {}
            log.info(
                "configuration %d/%d %s: train MSE %.5f, test MSE %.5f (%.0f s)", i + 1,
                len(grid), name, last.get("train_mse", float("nan")),
                last.get("test_mse", float("nan")), time.perf_counter() - t0,
            )  # fmt: skip
        results.append({"name": name, "size": size, "compression": comp,
                        "code_shape": shape, "estimator": est})  # fmt: skip
    return results


def code_maps(est: AEClusterer, X, batch_size: int = 512) -> np.ndarray:
    """The bottleneck tensors (N, channels, h, w) of ``est``'s CAE for images X."""
    return apply_batched(lambda m, x: m.encode_map(x), est.autoencoder_, X, batch_size,
                         est.device_)  # fmt: skip


def cluster_scores(Z, y, k: int, seed: int) -> dict:
    """ACC and NMI of k-means and of UMAP + GMM on the vectors Z against labels y."""
    Z = np.asarray(Z, dtype=np.float32).reshape(len(Z), -1)
    km = build_clusterer("kmeans", k, random_state=seed).fit(Z).labels_
    scores = {"kmeans_acc": cluster_acc(y, km), "kmeans_nmi": nmi(y, km)}
    if importlib.util.find_spec("umap") is None:  # the optional extra; k-means is enough
        log.warning("umap-learn is not installed (pip install 'aeclust[umap]'): no UMAP + GMM")
        return scores
    reducer = build_reducer("umap", n_components=k, random_state=seed)
    if len(Z) > k + 2:
        gmm = build_clusterer("gmm", k, random_state=seed).fit(reducer.fit_transform(Z)).labels_
        scores.update(umap_gmm_acc=cluster_acc(y, gmm), umap_gmm_nmi=nmi(y, gmm))
    return scores


def analyse_grid(
    results, X_train, X_test, y_train=None, y_test=None, *, k: int = 10, probe_folds: int = 5,
    weight_decay: float = 0.01, cluster: bool = True, svcca_keep: float = 0.99,
    svcca_images: int = 2000, seed: int = 0,
) -> tuple[list[dict], dict]:  # fmt: skip
    """One row per configuration (and a "pixels" row: the same probes and clustering on
    the raw images) and the SVCCA matrices of the training and the test codes
    (``{"names": [...], "train": S, "test": S}``, "input" first)."""
    rows, maps = [], {"train": {}, "test": {}}
    n_sv = {part: min(svcca_images, len(X)) for part, X in (("train", X_train), ("test", X_test))}
    maps["train"]["input"], maps["test"]["input"] = X_train[: n_sv["train"]], X_test[: n_sv["test"]]
    labelled = y_train is not None and y_test is not None
    n_pixels = int(np.prod(X_train.shape[1:]))
    sources = [("pixels", None)] + [(r["name"], r) for r in results]
    for name, r in sources:
        t0 = time.perf_counter()
        if r is None:
            codes = {"train": X_train, "test": X_test}
            mean = X_train.mean(axis=0, dtype=np.float64)
            row = {"name": "pixels", "size": None, "compression": None, "channels": None,
                   "side": None, "neurons": n_pixels, "share": 100.0,
                   # the error of reconstructing every image by the mean training image
                   "train_mse": float(((X_train - mean) ** 2).mean()),
                   "test_mse": float(((X_test - mean) ** 2).mean())}  # fmt: skip
        else:
            est, (c, h, w) = r["estimator"], r["code_shape"]
            codes = {"train": code_maps(est, X_train), "test": code_maps(est, X_test)}
            for part in ("train", "test"):
                maps[part][name] = codes[part][: n_sv[part]]
            row = {"name": name, "size": r["size"], "compression": r["compression"],
                   "channels": c, "side": h if h == w else f"{h}x{w}", "neurons": c * h * w,
                   "share": 100.0 * c * h * w / n_pixels}  # fmt: skip
            row.update(_curve_stats(est.history_))
        if labelled:
            for part, y in (("train", y_train), ("test", y_test)):
                probe = linear_probe(codes[part], y, probe_folds, weight_decay, seed)
                row[f"probe_{part}_f1"], row[f"probe_{part}_f1_std"] = probe["f1"], probe["f1_std"]
                row[f"probe_{part}_converged"] = probe["converged"]
            if cluster:
                row.update(cluster_scores(codes["train"], y_train, k, seed))
        log.info("analysed %s (%.0f s)", name, time.perf_counter() - t0)
        rows.append(row)
    names = list(maps["test"])
    svcca = {"names": names, "keep": svcca_keep}
    for part in ("train", "test"):
        svcca[part] = similarity_matrix(maps[part], svcca_keep).tolist()
    return rows, svcca


def _curve_stats(history: list[dict]) -> dict:
    """Final train / test MSE, the lowest test MSE and its epoch, and how far the final
    test MSE rose above that minimum (relative): the overfitting of finding 3."""
    test = np.array([h["test_mse"] for h in history])
    best = int(np.argmin(test))
    return {"train_mse": history[-1]["train_mse"], "test_mse": float(test[-1]),
            "best_test_mse": float(test[best]), "best_epoch": history[best]["epoch"],
            "test_rise": float(test[-1] / test[best] - 1), "epochs": len(history)}  # fmt: skip


OVERFIT = 0.02  # a final test MSE this far (relative) above its minimum counts as overfitting
SIMILAR = 2.0  # final training errors within this factor of each other count as similar
COPY = 0.01  # a test error below this share of the mean image's error would be copying


def findings(rows: list[dict], svcca: dict | None = None) -> list[dict]:
    """The paper's six findings (section 4) checked on the measurements of
    :func:`analyse_grid`: one dict each with ``finding``, ``holds`` (True / False, or None
    when the grid or the labels cannot tell) and the ``numbers`` behind it.

    Thresholds, since the paper judges by eye: final training errors "similar" when
    within a factor of 2; "overfitting" when the final test error is more than 2% above
    its minimum; "copying" when a complete CAE's test error is below 1% of the error of
    the mean image. "Size matters more than channels" compares the range of the per-size
    means (over compressions) with the range of the per-compression means (over sizes).
    """
    configs = [r for r in rows if r["name"] != "pixels"]
    pixels = next((r for r in rows if r["name"] == "pixels"), {})
    sizes = sorted({r["size"] for r in configs})
    comps = sorted({r["compression"] for r in configs})
    table = {(r["size"], r["compression"]): r for r in configs}
    out = []

    def effects(key):
        by_size = [np.mean([table[s, c][key] for c in comps]) for s in sizes]
        by_comp = [np.mean([table[s, c][key] for s in sizes]) for c in comps]
        return float(np.ptp(by_size)), float(np.ptp(by_comp)), by_size

    full = len(sizes) > 1 and len(comps) > 1 and len(table) == len(sizes) * len(comps)
    if full:
        size_fx, comp_fx, by_size = effects("train_mse")
        ratio = max(r["train_mse"] for r in configs) / min(r["train_mse"] for r in configs)
        out.append(_finding(
            1, "all configurations reach similar training error, and size matters more "
            "than channels for it", ratio <= SIMILAR and size_fx > comp_fx,
            max_over_min_train_mse=ratio, size_effect=size_fx, channel_effect=comp_fx,
            train_mse_by_size=dict(zip(sizes, by_size, strict=True)),
        ))  # fmt: skip
        size_fx, comp_fx, by_size = effects("test_mse")
        falling = [c for c in comps
                   if all(table[a, c]["test_mse"] > table[b, c]["test_mse"]
                          for a, b in zip(sizes, sizes[1:], strict=False))]  # fmt: skip
        out.append(_finding(
            2, "at equal compression a larger bottleneck size gives a lower test error, and "
            "the spread across sizes exceeds the spread across channels",
            len(falling) == len(comps) and size_fx > comp_fx,
            compressions_where_test_mse_falls_with_size=f"{len(falling)}/{len(comps)}",
            size_effect=size_fx, channel_effect=comp_fx,
            test_mse_by_size=dict(zip(sizes, by_size, strict=True)),
        ))  # fmt: skip
    else:
        out += [_finding(i, text, None, reason="needs at least 2 sizes x 2 compressions")
                for i, text in ((1, "similar training error; size over channels"),
                                (2, "larger size, lower test error"))]  # fmt: skip
    if len(sizes) > 1:
        rise = {s: float(np.mean([r["test_rise"] for r in configs if r["size"] == s]))
                for s in sizes}  # fmt: skip
        overfit = {s: sum(r["test_rise"] > OVERFIT for r in configs if r["size"] == s)
                   for s in sizes}  # fmt: skip
        small, large = sizes[0], sizes[-1]
        out.append(_finding(
            3, "small bottlenecks overfit (test error rises after a minimum) while large ones "
            "plateau", rise[small] > OVERFIT and rise[large] < rise[small],
            mean_test_rise_by_size=rise, overfitting_configs_by_size=overfit,
        ))  # fmt: skip
    else:
        out.append(_finding(3, "small overfit, large plateau", None, reason="needs 2 sizes"))
    complete = [r for r in configs if r["compression"] == 1.0]
    if complete and pixels.get("test_mse"):
        relative = {r["name"]: r["test_mse"] / pixels["test_mse"] for r in complete}
        out.append(_finding(
            4, "complete CAEs (c = 1) do not copy: their test error stays far from zero",
            all(v >= COPY for v in relative.values()),
            test_mse_over_mean_image_mse=relative,
            test_mse={r["name"]: r["test_mse"] for r in complete},
        ))  # fmt: skip
    else:
        out.append(_finding(4, "complete CAEs do not copy", None, reason="needs compression 1"))
    if "probe_test_f1" in pixels:
        beat = {part: sum(r[f"probe_{part}_f1"] > pixels[f"probe_{part}_f1"] for r in configs)
                for part in ("train", "test")}  # fmt: skip
        out.append(_finding(
            5, "linear probes on the codes beat the same probes on the raw pixels",
            all(2 * v > len(configs) for v in beat.values()),
            configs_beating_pixels={k: f"{v}/{len(configs)}" for k, v in beat.items()},
            pixels_f1={p: pixels[f"probe_{p}_f1"] for p in ("train", "test")},
            best_code_f1={p: max(r[f"probe_{p}_f1"] for r in configs) for p in ("train", "test")},
        ))  # fmt: skip
    else:
        out.append(_finding(5, "probes beat pixels", None, reason="needs labels"))
    out.append(_svcca_finding(configs, svcca))
    return out


def _svcca_finding(configs: list[dict], svcca: dict | None) -> dict:
    text = "SVCCA similarity is higher within a size than within a channel count"
    if not svcca:
        return _finding(6, text, None, reason="no SVCCA")
    index = {n: i for i, n in enumerate(svcca["names"])}
    S = np.asarray(svcca["test"])
    same_size, same_channels = [], []
    for i, a in enumerate(configs):
        for b in configs[i + 1 :]:
            value = S[index[a["name"]], index[b["name"]]]
            if a["size"] == b["size"]:
                same_size.append(value)
            elif a["channels"] == b["channels"]:
                same_channels.append(value)
    if not same_size or not same_channels:
        return _finding(6, text, None, reason="no pairs of equal size and of equal channels")
    return _finding(
        6, text, float(np.mean(same_size)) > float(np.mean(same_channels)),
        mean_within_size=float(np.mean(same_size)), pairs_within_size=len(same_size),
        mean_within_channels=float(np.mean(same_channels)),
        pairs_within_channels=len(same_channels), codes="test",
    )  # fmt: skip


def _finding(number: int, text: str, holds, **numbers) -> dict:
    return {"number": number, "finding": text, "holds": holds, "numbers": numbers}

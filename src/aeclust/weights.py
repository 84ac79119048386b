"""Weight files: write safetensors files; load pretrained encoder weights from a local
file into an autoencoder's ``encoder``.

Reads ``.safetensors`` files, or torch files through ``torch.load(weights_only=True)``,
which loads tensors and plain containers but never runs pickled code. Nothing is downloaded.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from .errors import ModelFileError

logger = logging.getLogger(__name__)

MAX_NAMED = 10  # offending keys named in an error message


def write_safetensors(tensors: dict, path: str | os.PathLike, metadata: dict) -> None:
    """Save ``tensors`` to ``path`` through a temporary file and :func:`os.replace`, so the
    file is never half-written; readable by all (0o644), where safetensors makes it 0o600."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _is_safetensors(path: Path) -> bool:
    """A safetensors file starts with an 8-byte header length, then a JSON header."""
    if path.suffix == ".safetensors":
        return True
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The ``{name: tensor}`` mapping stored in ``path`` (unwrapping "state_dict" / "model")."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"No weights file at '{path}'.")
    try:
        if _is_safetensors(path):
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated, or a pickle that is not plain tensors
        raise ModelFileError(
            f"Cannot read weights from '{path}': {exc}. Give a .safetensors file or a "
            "torch.save file of a state dict (tensors only)."
        ) from exc
    for wrapper in ("state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(wrapper), Mapping):
            state = state[wrapper]
            break
    if not isinstance(state, Mapping) or not state:
        raise ModelFileError(
            f"'{path}' does not hold a state dict (a non-empty mapping of names to tensors); "
            f"it holds a {type(state).__name__}."
        )
    odd = [k for k, v in state.items() if not isinstance(k, str) or not torch.is_tensor(v)]
    if odd:
        raise ModelFileError(
            f"'{path}' is not a state dict: {_names(odd)} "
            f"{'is not a tensor' if len(odd) == 1 else 'are not tensors'}."
        )
    return dict(state)


def _names(keys: list) -> str:
    shown = ", ".join(repr(k) for k in keys[:MAX_NAMED])
    return shown + (f" and {len(keys) - MAX_NAMED} more" if len(keys) > MAX_NAMED else "")


def _shape(t) -> str:
    return "x".join(str(n) for n in t.shape) or "scalar"


def load_encoder_weights(autoencoder: nn.Module, path: str | Path) -> dict[str, list[str]]:
    """Copy the tensors in the file at ``path`` into ``autoencoder.encoder``.

    Keys may carry an ``encoder.`` prefix. Every key in the file must be an encoder key
    with the same shape, else :class:`ModelFileError` names them; encoder keys missing from
    the file keep their initial values (so a file with only ``features.*`` works).

    Returns ``{"loaded": [...], "missing": [...]}``, lists of encoder keys.
    """
    encoder = autoencoder.encoder
    own = encoder.state_dict()
    state = {}
    for key, value in read_state_dict(path).items():
        bare = key.removeprefix("encoder.")
        state[key if key in own or bare not in own else bare] = value

    unknown = [k for k in state if k not in own]
    if unknown:
        raise ModelFileError(
            f"'{path}' has {len(unknown)} key(s) this encoder does not have: {_names(unknown)}. "
            f"The encoder's keys look like {_names(list(own)[:3])}; remove the other keys "
            "from the file, or use the architecture the file was saved from."
        )
    wrong = [k for k in state if state[k].shape != own[k].shape]
    if wrong:
        shapes = "; ".join(
            f"{k}: file {_shape(state[k])}, model {_shape(own[k])}" for k in wrong[:MAX_NAMED]
        )
        more = f" (and {len(wrong) - MAX_NAMED} more)" if len(wrong) > MAX_NAMED else ""
        hints = []
        if set(wrong) - {"classifier.6.weight", "classifier.6.bias"}:
            hints.append(
                "Build the autoencoder with the settings the file was saved with (image "
                "channels, width, latent_dim, ...) or remove these keys from the file."
            )
        if "classifier.6.weight" in wrong and "features.0.weight" in own:
            n_file = state["classifier.6.weight"].shape[0]
            n_model = own["classifier.6.weight"].shape[0]
            hints.append(
                f"classifier.6 is AlexNet's last layer: {n_file} outputs in the file (1000 in "
                f"a torchvision AlexNet file), {n_model} (latent_dim) here. Remove the "
                f"classifier.* keys (a features-only file loads and leaves the rest at its "
                f"initial values) or set latent_dim={n_file}."
            )
        hint = " ".join(hints)
        raise ModelFileError(
            f"'{path}' has {len(wrong)} tensor(s) whose shape differs from the encoder's: "
            f"{shapes}{more}. {hint}"
        )

    encoder.load_state_dict(state, strict=False)
    missing = [k for k in own if k not in state]
    logger.info(
        "Loaded %d encoder tensors from %s; %d kept their initial values%s",
        len(state),
        path,
        len(missing),
        f": {_names(missing)}" if missing else "",
    )
    return {"loaded": [k for k in own if k in state], "missing": missing}

"""Pure torch modules: autoencoders (``encode(x) -> h``, ``decode(h) -> output``), the
DenseNet classifier and DEC's clustering layer; no training, no I/O.

Every network is registered by name with its config dataclass (:data:`MODULES`), so saved
model files rebuild it from ``(name, config)``; the autoencoders among them
(:data:`AUTOENCODERS`) are also built by estimators and the CLI from ``(name, input_shape,
latent_dim, **params)``.
"""

from __future__ import annotations

import dataclasses

from torch import nn

from ..errors import ConfigError, check_choice, check_names
from .acrbm import AEACRBM, ACRBMLayer, AEACRBMConfig, ShallowACRBM, ShallowACRBMConfig
from .alexnet import AlexNetAutoencoder, AlexNetConfig
from .blocks import AEOutput, EncoderDecoder
from .bottleneck import BottleneckCAE, BottleneckCAEConfig
from .clustering_layer import ClusteringLayer, ClusteringModel
from .conv import ConvAutoencoder, ConvConfig
from .conv_pool import ConvNoPoolAutoencoder, ConvNoPoolConfig, ConvPoolAutoencoder, ConvPoolConfig
from .dcae import DCAE, DCAEConfig
from .densenet import DenseNet, DenseNetConfig
from .discriminator import LatentDiscriminator, LatentDiscriminatorConfig
from .fc import FCAutoencoder, FCConfig
from .hrwae import HRWAE, HRWAEConfig, HRWAEOutput
from .loc import LOC, LOCConfig, LOCOutput
from .mlp import MLPAutoencoder, MLPConfig
from .resnet import ResNetAutoencoder, ResNetConfig

AUTOENCODERS: dict[str, tuple[type, type[nn.Module]]] = {
    "mlp": (MLPConfig, MLPAutoencoder),
    "conv": (ConvConfig, ConvAutoencoder),
    "dcae": (DCAEConfig, DCAE),
    # Liu & Zhang, "Deep Convolutional Autoencoder Network for Breast Histopathology Image
    # Clustering": their five autoencoders, each with the paper's code size as default
    "fc": (FCConfig, FCAutoencoder),
    "conv-pool": (ConvPoolConfig, ConvPoolAutoencoder),
    "conv-nopool": (ConvNoPoolConfig, ConvNoPoolAutoencoder),
    "alexnet": (AlexNetConfig, AlexNetAutoencoder),
    "resnet": (ResNetConfig, ResNetAutoencoder),
    # Morais: the generator of WAE-GAN / HRWAE-GAN (L latent groups) and of the β-VAE
    "hrwae": (HRWAEConfig, HRWAE),
    # "Walking the tightrope": the CAE whose bottleneck shape `aeclust bottleneck` varies
    "bottleneck-cae": (BottleneckCAEConfig, BottleneckCAE),
}


MODULES: dict[str, tuple[type, type[nn.Module]]] = {
    **AUTOENCODERS,
    "densenet": (DenseNetConfig, DenseNet),
    "latent-discriminator": (LatentDiscriminatorConfig, LatentDiscriminator),
    # one-stage autoencoders: the shallow ACRBM and AE + ACRBM (or its ReLU-head reference)
    "shallow-acrbm": (ShallowACRBMConfig, ShallowACRBM),
    "ae-acrbm": (AEACRBMConfig, AEACRBM),
    "loc": (LOCConfig, LOC),  # LOC segmentation
}


def register_autoencoder(name: str, config_cls: type, module_cls: type[nn.Module]) -> None:
    """Make ``module_cls(config_cls(input_shape, latent_dim, **params))`` buildable by name."""
    AUTOENCODERS[name] = MODULES[name] = (config_cls, module_cls)


def register_module(name: str, config_cls: type, module_cls: type[nn.Module]) -> None:
    """Make ``module_cls(config_cls(**config))`` rebuildable from a model file by name (for
    networks that are not autoencoders: discriminators, clustering heads, segmenters)."""
    MODULES[name] = (config_cls, module_cls)


def module_spec(module: nn.Module) -> dict:
    """``{"registry": name, "config": {...}}`` of a registered module, JSON-serialisable."""
    for name, (_, module_cls) in MODULES.items():
        if type(module) is module_cls:
            cfg = dataclasses.asdict(module.config)
            config = {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}
            return {"registry": name, "config": config}
    raise TypeError(f"{type(module).__name__} is not a registered module (see register_module)")


def build_module(name: str, config: dict) -> nn.Module:
    """The module registered as ``name`` built from its saved ``config`` (see module_spec)."""
    config_cls, module_cls = MODULES[check_choice("module", name, sorted(MODULES))]
    return module_cls(config_cls(**{k: tuple(v) if isinstance(v, list) else v
                                    for k, v in config.items()}))  # fmt: skip


def build_autoencoder(
    name: str, input_shape: tuple[int, int, int], latent_dim: int | None = None, **params
) -> nn.Module:
    """Build the autoencoder registered as ``name`` for images of ``input_shape`` (C, H, W).

    ``latent_dim=None`` takes the config's default (10 for mlp, conv, dcae; the paper's
    code size for the Liu & Zhang models, e.g. 192 for conv-nopool).
    """
    config_cls, module_cls = AUTOENCODERS[check_choice("autoencoder", name, sorted(AUTOENCODERS))]
    fields = [f.name for f in dataclasses.fields(config_cls)]
    check_names(
        f"autoencoder {name!r}",
        params,
        [f for f in fields if f not in ("input_shape", "latent_dim")],
    )
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    if latent_dim is not None:
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
            raise ConfigError(f"latent_dim must be a positive integer; got {latent_dim!r}.")
        params["latent_dim"] = latent_dim
    try:
        return module_cls(config_cls(input_shape=tuple(int(s) for s in input_shape), **params))
    except ValueError as exc:  # e.g. images too small for the architecture
        raise ConfigError(f"Cannot build autoencoder {name!r}: {exc}.") from exc


def autoencoder_config(module: nn.Module) -> dict:
    """The JSON-serialisable config of a built autoencoder (inverse of build_autoencoder)."""
    return module_spec(module)["config"]


__all__ = [
    "AUTOENCODERS",
    "ACRBMLayer",
    "AEACRBM",
    "AEACRBMConfig",
    "ShallowACRBM",
    "ShallowACRBMConfig",
    "AlexNetAutoencoder",
    "AlexNetConfig",
    "AEOutput",
    "BottleneckCAE",
    "BottleneckCAEConfig",
    "ClusteringLayer",
    "ClusteringModel",
    "EncoderDecoder",
    "ConvAutoencoder",
    "ConvConfig",
    "ConvNoPoolAutoencoder",
    "ConvNoPoolConfig",
    "ConvPoolAutoencoder",
    "ConvPoolConfig",
    "DCAE",
    "DCAEConfig",
    "DenseNet",
    "DenseNetConfig",
    "MODULES",
    "FCAutoencoder",
    "HRWAE",
    "HRWAEConfig",
    "HRWAEOutput",
    "LatentDiscriminator",
    "LOC",
    "LOCConfig",
    "LOCOutput",
    "LatentDiscriminatorConfig",
    "FCConfig",
    "MLPAutoencoder",
    "MLPConfig",
    "ResNetAutoencoder",
    "ResNetConfig",
    "autoencoder_config",
    "build_autoencoder",
    "build_module",
    "module_spec",
    "register_autoencoder",
    "register_module",
]

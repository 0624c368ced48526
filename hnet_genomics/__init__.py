"""hnet_genomics: tokenizer-free DNA language models with H-Net dynamic chunking."""

from hnet_genomics.config import Config, ModelConfig, load_config
from hnet_genomics.errors import HNetError

__version__ = "0.1.0"


def build_model(config):
    """Build the causal LM (H-Net or isotropic baseline) from a ``Config`` or ``ModelConfig``."""
    from hnet_genomics.model.lm import HNetLM

    return HNetLM(config.model if isinstance(config, Config) else config)


def from_pretrained(path, **kwargs):
    """Load a model saved with ``save_pretrained`` (config JSON + safetensors), from its folder or a Hugging Face
    Hub repo id (``org/name``, ``org/name@revision``); ``revision``, ``cache_dir``, ``local_files_only`` and
    ``map_location`` as ``HNetLM.from_pretrained``."""
    from hnet_genomics.model.lm import HNetLM

    return HNetLM.from_pretrained(path, **kwargs)


__all__ = ["Config", "ModelConfig", "HNetError", "load_config", "build_model", "from_pretrained"]

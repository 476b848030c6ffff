"""Model registry and loading: any open_clip model, the shipped tiny CLIP, and tiny random configs for tests.

Model ids: a registry name (``toy-clip``, ``tiny-random``, ``ViT-B-16``...), ``local-dir:PATH``, ``hf-hub:org/repo``
or any ``open_clip.list_models()`` name with a ``pretrained`` tag. Weights load with ``weights_only=True`` or from
safetensors: no checkpoint is ever unpickled.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

ASSETS = Path(__file__).resolve().parent.parent / "assets"
TOY_CLIP_DIR = ASSETS / "models" / "toy-clip"

# Tiny random open_clip config (fast tests, benchmarks): a 16 px ViT with a 1-layer text tower.
TINY_RANDOM_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 32, "layers": 2, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says how to fix it."""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    description: str
    open_clip_name: str
    pretrained: str | None = None
    config: dict | None = None  # random-init config (no weights)
    tags: tuple[str, ...] = field(default_factory=tuple)


MODELS: dict[str, ModelEntry] = {}


def register_model(entry: ModelEntry) -> ModelEntry:
    if entry.name in MODELS:
        raise ValueError(f"model {entry.name!r} already registered")
    MODELS[entry.name] = entry
    return entry


register_model(ModelEntry("toy-clip", "tiny CLIP pre-trained by this project on the toy-shapes world (offline)",
                          f"local-dir:{TOY_CLIP_DIR}", tags=("offline", "default")))
register_model(ModelEntry("tiny-random", "randomly initialised tiny open_clip config (tests, benchmarks)",
                          "tiny-random", config=TINY_RANDOM_CFG, tags=("offline", "random")))
for _name, _tag, _desc in (
    ("ViT-B-16", "openai", "OpenAI CLIP ViT-B/16 (the paper's backbone; downloads ~600 MB)"),
    ("ViT-B-32", "laion2b_s34b_b79k", "LAION-2B CLIP ViT-B/32 (downloads ~600 MB)"),
    ("ViT-L-14", "openai", "OpenAI CLIP ViT-L/14 (downloads ~1.7 GB)"),
):
    register_model(ModelEntry(_name, _desc, _name, pretrained=_tag, tags=("download",)))


@dataclass
class ClipBundle:
    """A loaded CLIP with what the pipeline needs to feed it."""

    model: torch.nn.Module
    tokenizer: object
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    model_id: str
    pretrained: str | None
    interpolation: str = "bicubic"
    resize_mode: str = "shortest"
    quick_gelu: bool = False  # what the tower was built with (OpenAI weights need it)

    def pipeline(self):
        """The eval/train image pipeline this model was trained with (size, mean/std, resize)."""
        from .data.pipeline import ImagePipeline

        return ImagePipeline(self.image_size, self.mean, self.std, self.interpolation, self.resize_mode)

    @property
    def logit_scale(self) -> float:
        return float(self.model.logit_scale.exp().item())


def list_models() -> list[ModelEntry]:
    return list(MODELS.values())


def resolve(model: str, pretrained: str | None = None) -> tuple[str, str | None, dict | None]:
    """(open_clip model name, pretrained tag, random config) for a model id."""
    if model in MODELS:
        e = MODELS[model]
        tag = pretrained if pretrained is not None else e.pretrained
        if e.config is None and not e.open_clip_name.startswith(("local-dir:", "hf-hub:")):
            tag = check_pretrained(e.open_clip_name, tag)
        if e.open_clip_name.startswith("local-dir:"):
            check_local_dir(Path(e.open_clip_name[len("local-dir:"):]))
        return e.open_clip_name, tag, e.config
    if model.startswith("local-dir:"):
        check_local_dir(Path(model[len("local-dir:"):]))
        return model, None, None
    if model.startswith("hf-hub:"):
        return model, None, None
    import open_clip

    if model in open_clip.list_models():
        return model, check_pretrained(model, pretrained), None
    known = ", ".join(MODELS)
    raise ModelLoadError(f"unknown model {model!r}: use one of {known}, an open_clip name "
                         "(python -m core list models), local-dir:PATH or hf-hub:org/repo")


def check_local_dir(folder: Path) -> None:
    """An open_clip model folder whose weights are safetensors (open_clip would fall back to a pickled .bin)."""
    if not (folder / "open_clip_config.json").is_file():
        hint = " (rebuild it with: python -m core.world.pretrain)" if folder == TOY_CLIP_DIR else ""
        raise ModelLoadError(f"{folder} has no open_clip_config.json: not an open_clip model folder{hint}")
    if not any(folder.glob("*.safetensors")):
        pickled = sorted(p.name for ext in ("*.bin", "*.pth", "*.pt") for p in folder.glob(ext))
        why = (f"its weights ({', '.join(pickled)}) are pickled, and pickles are refused" if pickled
               else "it has no weights")
        raise ModelLoadError(f"{folder}: {why}; save them as open_clip_model.safetensors "
                             "(safetensors.torch.save_file(model.state_dict(), ...))")


def check_pretrained(model: str, pretrained: str | None) -> str | None:
    """Allow-list for ``pretrained``: one of open_clip's tags for the model, or a local .safetensors file."""
    import open_clip

    if pretrained is None:
        return None
    tags = open_clip.list_pretrained_tags_by_model(model)
    if pretrained in tags:
        return pretrained
    if pretrained.endswith(".safetensors") and Path(pretrained).is_file():
        return pretrained
    known = ", ".join(tags) or "none"
    raise ModelLoadError(f"--pretrained {pretrained!r} is not a known tag for {model} (known: {known}) nor a "
                         ".safetensors file; pickled checkpoints are refused")


def _offline_hint(name: str, pretrained: str | None, err: Exception) -> str:
    what = f"{name} ({pretrained})" if pretrained else name
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    return (f"could not load the weights of {what}: {type(err).__name__}: {err}. "
            + ("HF_HUB_OFFLINE=1 is set, so nothing is downloaded. " if offline else
               "The download failed (no network?). ")
            + "On a machine with network run `python -c \"import open_clip; open_clip.create_model("
            f"'{name}', pretrained='{pretrained or ''}')\"` to fill the Hugging Face cache (~/.cache/huggingface, or "
            "$HF_HOME), copy that cache here, or save the model as a folder with open_clip_config.json + "
            "open_clip_model.safetensors and pass --model local-dir:PATH")


def pretrained_on_toy_world(model: str) -> bool:
    """Whether a model learned its words only from the toy world's captions: ``toy-clip``, or a ``local-dir:``
    folder written by ``core.world.pretrain`` (it holds that script's ``pretrain_log.json``)."""
    if model == "toy-clip":
        return True
    return model.startswith("local-dir:") and (Path(model[len("local-dir:"):]) / "pretrain_log.json").is_file()


def load_clip(model: str = "toy-clip", pretrained: str | None = None, device: str | torch.device = "cpu") -> ClipBundle:
    import open_clip

    name, tag, cfg = resolve(model, pretrained)
    try:
        if cfg is not None:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / f"{name}.json"
                path.write_text(json.dumps(cfg))
                open_clip.add_model_config(path)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)  # a random config is the same model in every process
                m = open_clip.create_model(name, pretrained=None)
            tokenizer = open_clip.get_tokenizer(name)
        else:
            m = open_clip.create_model(name, pretrained=tag, weights_only=True, require_pretrained=bool(tag),
                                       force_quick_gelu=tag_needs_quick_gelu(name, tag))
            tokenizer = open_clip.get_tokenizer(name)
    except ModelLoadError:
        raise
    except Exception as e:  # noqa: BLE001 - download/IO errors of many types: turn into one actionable message
        if isinstance(e, (ValueError, KeyError)) and not tag and not name.startswith("hf-hub:"):
            raise ModelLoadError(f"could not build {name}: {e}") from e
        raise ModelLoadError(_offline_hint(name, tag, e)) from e
    m = m.to(device).eval()
    for p in m.parameters():
        p.requires_grad_(False)
    v = m.visual
    size = v.image_size if isinstance(v.image_size, int) else v.image_size[0]
    mean = tuple(getattr(v, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN)
    std = tuple(getattr(v, "image_std", None) or open_clip.OPENAI_DATASET_STD)
    pp = getattr(v, "preprocess_cfg", None) or {}
    mean, std = tuple(pp.get("mean", mean)), tuple(pp.get("std", std))
    return ClipBundle(m, tokenizer, int(size), mean, std, model, tag, str(pp.get("interpolation") or "bicubic"),
                      str(pp.get("resize_mode") or "shortest"), uses_quick_gelu(m))


def tag_needs_quick_gelu(name: str, tag: str | None) -> bool:
    """Whether a built-in model + pretrained tag was trained with QuickGELU (open_clip's pretrained cfg says so).

    open_clip builds ``ViT-B-16`` with nn.GELU and only warns when the ``openai`` tag needs QuickGELU; every
    OpenAI number would then be off, so the tower is built as the weights were trained.
    """
    import open_clip

    if not tag or name.startswith(("local-dir:", "hf-hub:")) or name not in open_clip.list_models():
        return False
    return bool(open_clip.get_pretrained_cfg(name, tag).get("quick_gelu", False))


def uses_quick_gelu(model: torch.nn.Module) -> bool:
    from open_clip.transformer import QuickGELU

    return any(isinstance(mod, QuickGELU) for mod in model.modules())

"""Model presets: plain data the UI picks from by name. No path or URL ever comes from a browser.

A preset's `source` is a Hugging Face Hub id or a local folder in diffusers format; folders given by the
person running the server (`--model-dirs`) become presets too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .loras import LoraFile, find_loras, lora_paths, model_width, refusal
from .schedulers import DISTILLED, check_names
from .schedulers import NAMES as SCHEDULERS

ASSETS = Path(__file__).resolve().parents[2] / "assets"
EMBEDDED_MODEL = ASSETS / "shapes-model"


@dataclass(frozen=True)
class IPAdapter:
    """An image-prompt adapter (for embedding variations) and the image encoder it needs."""

    source: str  # Hub id or folder
    subfolder: str
    weight_name: str
    image_encoder: str  # subfolder of `source` holding the CLIP vision model


@dataclass(frozen=True)
class Upscaler:
    """A super-resolution pipeline that serves a model's Upscale task and its hires pass."""

    source: str  # Hub id or folder of a diffusers upscaling pipeline
    scale: int  # 4 or 2
    steps: int = 20
    guidance: float = 0.0  # 0–1: no guidance (one U-Net call a step)
    detail: float = 0.06  # the "new detail" dial's default: the share of the noise-augmentation range
    scheduler: str = "Euler a"
    download_gb: float = 0.0


@dataclass(frozen=True)
class ModelPreset:
    name: str
    label: str
    source: str
    family: str  # "shapes", "sd15", "sd21", "sdxl": decides pipelines, previews and the similarity curve
    width: int = 512
    height: int = 512
    steps: int = 25
    guidance: float = 7.0
    scheduler: str = "DPM++ 2M Karras"  # the sampler picked first
    schedulers: tuple[str, ...] = SCHEDULERS  # the samplers offered, names from pipelines.front.schedulers
    min_size: int = 256
    max_size: int = 1024
    inpaint_source: str | None = None  # a dedicated inpainting checkpoint (9-channel U-Net)
    ip_adapter: IPAdapter | None = None
    variant: str | None = "fp16"  # weights variant to fetch for half precision
    download_gb: float = 0.0  # about how much its first use downloads in half precision (0: nothing)
    # Linear map from the 4 latent channels (plus bias) to RGB in 0–1, for free live previews.
    latent_rgb: tuple[tuple[float, float, float], ...] | None = None
    # Its super-resolution stages, largest scale first; without one, upscaling is a hires pass (resize,
    # then image to image at a low strength, AUTOMATIC1111's "hires fix") on the model itself.
    upscalers: tuple[Upscaler, ...] = ()
    hires_detail: float = 0.35  # the hires pass's default strength
    # Its pictures go on through its own stage by default: Hires starts on, and a picture sent to it larger
    # than its size comes back at that size (a model too small to be looked at without it).
    cascade: bool = False

    def __post_init__(self) -> None:
        check_names((self.scheduler, *self.schedulers))
        if self.scheduler not in self.schedulers:
            raise ValueError(f"{self.name}: the first scheduler {self.scheduler!r} is not among those offered")
        if self.cascade and not self.upscalers:
            raise ValueError(f"{self.name}: a model that cascades by default needs a stage of its own")

    @property
    def native_size(self) -> int:
        """The longer side the model makes by default: image inputs are fitted to it."""
        return max(self.width, self.height)

    @property
    def is_local(self) -> bool:
        return Path(self.source).is_dir()

    def upscaler(self, scale: int) -> Upscaler | None:
        """The stage that serves ×`scale`: its own, else a larger one (its result is then scaled down)."""
        fitting = [u for u in self.upscalers if u.scale >= scale]
        return min(fitting, key=lambda u: u.scale) if fitting else None

    # The Upscale task's defaults on the page follow the stage that serves ×4.
    @property
    def upscale_steps(self) -> int:
        return self.upscalers[0].steps if self.upscalers else self.steps

    @property
    def upscale_guidance(self) -> float:
        return self.upscalers[0].guidance if self.upscalers else self.guidance

    @property
    def upscale_scheduler(self) -> str:
        return self.upscalers[0].scheduler if self.upscalers else self.scheduler

    @property
    def upscale_detail(self) -> float:
        return self.upscalers[0].detail if self.upscalers else self.hires_detail


# SD 1.x / 2.x latent → RGB factors, as used by ComfyUI's and A1111's cheap previews.
SD15_LATENT_RGB = (
    (0.3512, 0.2297, 0.3227),
    (0.3250, 0.4974, 0.2350),
    (-0.2829, 0.1762, 0.2721),
    (-0.2120, -0.2616, -0.7177),
    (0.5, 0.5, 0.5),
)
SDXL_LATENT_RGB = (
    (0.3651, 0.4232, 0.4341),
    (-0.2533, -0.0042, 0.1068),
    (0.1076, 0.1111, -0.0362),
    (-0.3165, -0.2492, -0.2188),
    (0.5, 0.5, 0.5),
)


# Stability's two upscalers work on any picture: the ×4 is a text-conditioned pixel-to-latent diffusion
# model (noise level 0–350), the ×2 works in SD's own latent space. Both are offered with SD 1.x/2.x.
SD_UPSCALERS = (
    Upscaler("stabilityai/stable-diffusion-x4-upscaler", 4, steps=20, guidance=9.0, scheduler="Euler a", download_gb=1.7),
    Upscaler("stabilityai/sd-x2-latent-upscaler", 2, steps=20, guidance=0.0, detail=0.0, scheduler="Euler", download_gb=2.4),
)


def _builtin_presets() -> tuple[ModelPreset, ...]:
    sd15_adapter = IPAdapter("h94/IP-Adapter", "models", "ip-adapter_sd15.safetensors", "models/image_encoder")
    sdxl_adapter = IPAdapter("h94/IP-Adapter", "sdxl_models", "ip-adapter_sdxl.safetensors", "models/image_encoder")
    return (
        ModelPreset(
            name="shapes",
            label="Shapes (embedded, 64×64, CPU)",
            source=str(EMBEDDED_MODEL),
            inpaint_source=str(EMBEDDED_MODEL / "inpainting"),  # its own 9-channel U-Net, trained to add figures
            family="shapes",
            width=64,
            height=64,
            steps=20,
            guidance=5.0,
            scheduler="Euler a",
            min_size=64,
            max_size=128,  # trained at 64; larger sizes repeat the shape
            variant=None,
            latent_rgb=None,  # none: previews decode with its own (tiny) autoencoder
            # Its own pixel-space ×4 stage (shapeworld/upscale.py), trained on the scenes drawn at 256². Euler a at
            # 4 steps, no new detail: its fresh noise each step decides edges that a deterministic sampler leaves
            # as the blend of where they could be (bench/upscale.py, BENCHMARKS.md).
            upscalers=(Upscaler(str(EMBEDDED_MODEL / "upscaler"), 4, steps=4, guidance=0.0, detail=0.0, scheduler="Euler a"),),
            cascade=True,  # 64² is a thumbnail: its ×4 costs two thirds of the picture (bench/upscale.py)
        ),
        ModelPreset(
            name="sd15",
            label="Stable Diffusion 1.5",
            source="stable-diffusion-v1-5/stable-diffusion-v1-5",
            download_gb=2.1,
            family="sd15",
            inpaint_source="stable-diffusion-v1-5/stable-diffusion-inpainting",
            ip_adapter=sd15_adapter,
            max_size=768,
            latent_rgb=SD15_LATENT_RGB,
            upscalers=SD_UPSCALERS,
        ),
        ModelPreset(
            name="sd-turbo",
            label="SD-Turbo (1–4 steps)",
            source="stabilityai/sd-turbo",
            download_gb=2.6,
            family="sd21",
            steps=2,
            guidance=0.0,
            scheduler="Euler a",
            schedulers=DISTILLED,
            max_size=768,
            latent_rgb=SD15_LATENT_RGB,
        ),
        ModelPreset(
            name="sdxl",
            label="Stable Diffusion XL",
            source="stabilityai/stable-diffusion-xl-base-1.0",
            download_gb=6.9,
            family="sdxl",
            width=1024,
            height=1024,
            steps=30,
            guidance=6.0,
            min_size=512,
            max_size=1536,
            inpaint_source="diffusers/stable-diffusion-xl-1.0-inpainting-0.1",
            ip_adapter=sdxl_adapter,
            latent_rgb=SDXL_LATENT_RGB,
        ),
        ModelPreset(
            name="sdxl-turbo",
            label="SDXL-Turbo (1–4 steps)",
            source="stabilityai/sdxl-turbo",
            download_gb=6.9,
            family="sdxl",
            steps=2,
            guidance=0.0,
            scheduler="Euler a",
            schedulers=DISTILLED,
            max_size=1024,
            latent_rgb=SDXL_LATENT_RGB,
        ),
    )


def family_of(folder: Path) -> str:
    """Guess a local folder's family from its model_index.json."""
    index = json.loads((folder / "model_index.json").read_text())
    name = index.get("_class_name", "")
    return "sdxl" if "XL" in name else "sd15"


@dataclass(frozen=True)
class Registry:
    presets: tuple[ModelPreset, ...] = field(default_factory=_builtin_presets)
    lora_folders: tuple[tuple[str, str], ...] = ()  # the server's LoRA files and folders (--lora-dirs): (name, path)

    @classmethod
    def with_folders(cls, folders: dict[str, str], loras: tuple[tuple[str, str], ...] = ()) -> Registry:
        """The built-in presets plus the server's own local diffusers folders and LoRA files."""
        extra = []
        for name, path in folders.items():
            folder = Path(path).expanduser().resolve()
            if not (folder / "model_index.json").is_file():
                raise ValueError(f"model folder {name}={folder} has no model_index.json (not a diffusers folder)")
            family = family_of(folder)
            size = 1024 if family == "sdxl" else 512
            extra.append(
                ModelPreset(
                    name=name,
                    label=f"{name} (local)",
                    source=str(folder),
                    family=family,
                    width=size,
                    height=size,
                    variant=None,
                    latent_rgb=SDXL_LATENT_RGB if family == "sdxl" else SD15_LATENT_RGB,
                )
            )
        return cls(_builtin_presets() + tuple(extra), loras)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.presets)

    def get(self, name: str) -> ModelPreset:
        for preset in self.presets:
            if preset.name == name:
                return preset
        raise KeyError(name)

    def loras(self, model: str) -> dict[str, LoraFile]:
        """Every LoRA file on this server, by name, as `model` sees them (its folder's own `loras/` first)."""
        return find_loras(self.get(model), self.lora_folders)

    def lora_files(self, model: str) -> tuple[Path, ...]:
        """The LoRA files `loras(model)` reads (not read here): what to watch for a change."""
        return tuple(lora_paths(self.get(model), self.lora_folders).values())

    def lora_refusals(self, model: str) -> dict[str, str]:
        """Every LoRA name with why it cannot serve `model` ("" for those that can)."""
        preset = self.get(model)
        width = model_width(preset)
        return {name: refusal(lora, width, preset.label) for name, lora in self.loras(model).items()}

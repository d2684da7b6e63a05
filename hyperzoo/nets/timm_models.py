"""Models of the timm library by name: ``create_model("timm:resnet50")`` (install ``hyperzoo[timm]``).

Every timm model name is accepted after the ``timm:`` prefix; the model is always built **without pretrained
weights** (nothing downloads). ``num_classes`` goes to timm; other keyword arguments too.

``adapt_cifar=True`` means what it means for torchvision models (a 32x32 input, the stride of the stem reduced so
that the last feature map is not smaller than 1x1), done the generic way timm allows:

- models whose constructor takes ``img_size`` (ViTs, DeiT, Swin, CaiT, XCiT, BEiT, MLP-Mixer, ...) are built for
  ``img_size=32`` (positional embeddings and window sizes follow timm's own rules);
- the other models (CNNs) keep their architecture, and the stride of their first convolution
  (``pretrained_cfg["first_conv"]``) becomes 1 when it is 2, so a 32x32 image ends on a 2x2 map instead of 1x1.

Models that reject either (a fixed grid that 32 does not fit) raise :class:`~hyperzoo.errors.ConfigError` naming the
model; build them at their own size (``adapt_cifar=False``, ``expected_input_size`` is timm's input size).
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from hyperzoo.errors import ConfigError, HyperzooError, UnknownNameError

__all__ = ["PREFIX", "create_timm_model", "is_timm_name", "timm_available"]

PREFIX = "timm:"


def is_timm_name(name: str) -> bool:
    """Whether ``name`` is a ``timm:`` model name (whether or not timm is installed)."""
    return isinstance(name, str) and name.startswith(PREFIX)


def timm_available() -> bool:
    """Whether the optional timm package can be imported."""
    try:
        import timm  # noqa: F401
    except ImportError:
        return False
    return True


def _timm() -> Any:
    try:
        import timm
    except ImportError as e:
        raise HyperzooError("timm: model names need the optional timm package: pip install 'hyperzoo[timm]'") from e
    return timm


def check_timm_name(name: str) -> str:
    """The timm name of ``"timm:<name>"``; raises :class:`UnknownNameError` (with close names) if timm lacks it."""
    timm = _timm()
    bare = name[len(PREFIX) :]
    if not timm.is_model(bare):
        import difflib

        close = difflib.get_close_matches(bare, timm.list_models(), n=5)
        hint = f"; did you mean {', '.join(PREFIX + c for c in close)}?" if close else ""
        raise UnknownNameError(f"unknown timm model {bare!r}{hint} (timm.list_models() lists them)")
    return bare


def _entrypoint_takes(bare: str, arg: str) -> bool:
    """Whether the model class behind a timm entrypoint takes ``arg`` (``img_size``) in its constructor."""
    timm = _timm()
    fn = timm.models.model_entrypoint(bare)
    module = inspect.getmodule(fn)
    if module is None:
        return False
    for obj in vars(module).values():
        if inspect.isclass(obj) and issubclass(obj, nn.Module) and obj.__module__ == module.__name__:
            try:
                params = inspect.signature(obj.__init__).parameters
            except (TypeError, ValueError):
                continue
            if arg in params and "num_classes" in params:
                return True
    return False


def _unstride_first_conv(net: nn.Module, first_conv: str | None) -> bool:
    if not first_conv:
        return False
    modules = dict(net.named_modules())
    conv = modules.get(first_conv) or modules.get(first_conv.rpartition(".")[0])
    if isinstance(conv, nn.Conv2d) and max(conv.stride) == 2:
        conv.stride = (1, 1)
        return True
    return False


def create_timm_model(name: str, num_classes: int | None = None, adapt_cifar: bool = False, **kwargs: Any) -> nn.Module:
    """Build ``"timm:<name>"`` without pretrained weights.

    Args:
        name: ``"timm:"`` followed by a timm model name.
        num_classes: classifier outputs (timm's default when ``None``).
        adapt_cifar: adapt to 32x32 inputs (module docstring).
        **kwargs: more arguments for ``timm.create_model``.

    Returns:
        The model, with ``expected_input_size`` set (32 when adapted, else timm's input size).

    Raises:
        UnknownNameError: timm has no such model.
        ConfigError: ``pretrained=True`` was asked for, or the model cannot be adapted to 32x32.
        HyperzooError: timm is not installed.
    """
    timm = _timm()
    bare = check_timm_name(name)
    if kwargs.pop("pretrained", False):
        raise ConfigError(f"{name}: hyperzoo builds timm models without pretrained weights (no downloads)")
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if adapt_cifar and "img_size" not in kwargs and _entrypoint_takes(bare, "img_size"):
        kwargs["img_size"] = 32
    try:
        net = timm.create_model(bare, pretrained=False, **kwargs)
    except Exception as e:
        what = "adapted to 32x32 inputs" if adapt_cifar else f"with {kwargs}"
        raise ConfigError(f"{name}: timm cannot build it {what}: {type(e).__name__}: {e}") from e
    cfg = getattr(net, "pretrained_cfg", None) or {}
    if adapt_cifar:
        if "img_size" not in kwargs:
            _unstride_first_conv(net, cfg.get("first_conv"))
        net.expected_input_size = 32
    else:
        size = cfg.get("input_size") or (3, 224, 224)
        net.expected_input_size = tuple(int(s) for s in size[1:]) if len(size) == 3 else 224
    return net


# One small member (or a shallow copy: ``depth=`` where the smallest member is large) of every timm model family,
# for coverage checks (tests/nets/test_timm_models.py, experiments/timm_coverage.py): (family, name, kwargs).
# Families left out: large vision encoders of multimodal models (deepseek_vit, qwen3_vit, gemma4_vit, naflexvit,
# mobilenetv5: 150M+ parameters, text-model inputs), pnasnet/nasnet (331x331, 80M+).
COVERAGE_SET: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("resnet", "resnet18", {}),
    ("resnet", "test_resnet", {}),
    ("resnetv2", "resnetv2_50", {}),
    ("byobnet", "test_byobnet", {}),
    ("byoanet", "halonet_h1", {}),
    ("regnet", "regnetx_002", {}),
    ("efficientnet", "test_efficientnet", {}),
    ("efficientnet", "efficientnet_b0", {}),
    ("mobilenetv3", "mobilenetv3_small_050", {}),
    ("ghostnet", "ghostnet_050", {}),
    ("rexnet", "rexnet_100", {}),
    ("densenet", "densenet121", {}),
    ("dla", "dla46x_c", {}),
    ("dpn", "dpn48b", {}),
    ("cspnet", "cs3darknet_focus_s", {}),
    ("cspnext", "cspnext_tiny", {}),
    ("hrnet", "hrnet_w18_small", {}),
    ("res2net", "res2net50_14w_8s", {}),
    ("resnest", "resnest14d", {}),
    ("sknet", "skresnet18", {}),
    ("senet", "legacy_seresnet18", {}),
    ("selecsls", "selecsls42", {}),
    ("vovnet", "ese_vovnet19b_slim", {}),
    ("xception", "legacy_xception", {}),
    ("xception_aligned", "xception41", {}),
    ("inception_v3", "inception_v3", {}),
    ("inception_v4", "inception_v4", {}),
    ("inception_resnet_v2", "inception_resnet_v2", {}),
    ("tresnet", "tresnet_m", {}),
    ("hardcorenas", "hardcorenas_a", {}),
    ("repvit", "repvit_m0_9", {}),
    ("repghost", "repghostnet_050", {}),
    ("fasternet", "fasternet_t0", {}),
    ("starnet", "starnet_s050", {}),
    ("hgnet", "hgnetv2_b0", {}),
    ("lcnetv2", "lcnetv2_small", {}),
    ("nfnet", "test_nfnet", {}),
    ("nfnet", "nf_resnet26", {}),
    ("convnext", "test_convnext", {}),
    ("convnext", "convnextv2_atto", {}),
    ("convmixer", "convmixer_768_32", {}),
    ("inception_next", "inception_next_atto", {}),
    ("rdnet", "rdnet_tiny", {}),
    ("mambaout", "test_mambaout", {}),
    ("metaformer", "poolformer_s12", {}),
    ("metaformer", "poolformerv2_s12", {}),
    ("metaformer", "caformer_s18", {}),
    ("vision_transformer", "test_vit", {}),
    ("vision_transformer", "vit_tiny_patch16_224", {}),
    ("deit", "deit_tiny_patch16_224", {}),
    ("deit", "deit_tiny_distilled_patch16_224", {}),
    ("deit", "deit3_small_patch16_224", {"depth": 4}),
    ("vision_transformer_relpos", "test_vit_relpos", {}),
    ("vision_transformer_hybrid", "vit_tiny_r_s16_p8_224", {}),
    ("vision_transformer_sam", "samvit_base_patch16_224", {"depth": 2}),
    ("eva", "eva02_tiny_patch14_224", {}),
    ("beit", "beit_base_patch16_224", {"depth": 2}),
    ("cait", "cait_xxs24_224", {"depth": 4}),
    ("xcit", "xcit_nano_12_p16_224", {}),
    ("levit", "levit_128s", {}),
    ("swin_transformer", "swin_tiny_patch4_window7_224", {}),
    ("swin_transformer_v2", "swinv2_tiny_window8_256", {}),
    ("swin_transformer_v2_cr", "swinv2_cr_tiny_ns_224", {}),
    ("mlp_mixer", "mixer_s32_224", {}),
    ("mlp_mixer", "resmlp_12_224", {}),
    ("mlp_mixer", "gmlp_ti16_224", {}),
    ("convit", "convit_tiny", {}),
    ("pit", "pit_ti_224", {}),
    ("tnt", "tnt_s_patch16_224", {}),
    ("twins", "twins_svt_small", {}),
    ("pvt_v2", "pvt_v2_b0", {}),
    ("coat", "coat_lite_tiny", {}),
    ("coat", "coat_tiny", {}),
    ("crossvit", "crossvit_tiny_240", {}),
    ("edgenext", "edgenext_xx_small", {}),
    ("maxxvit", "test_maxvit", {}),
    ("maxxvit", "test_coatnet", {}),
    ("efficientformer", "efficientformer_l1", {}),
    ("efficientformer_v2", "efficientformerv2_s0", {}),
    ("mobilevit", "mobilevit_xxs", {}),
    ("efficientvit_mit", "efficientvit_b0", {}),
    ("efficientvit_msra", "efficientvit_m0", {}),
    ("tiny_vit", "tiny_vit_5m_224", {}),
    ("fastvit", "fastvit_t8", {}),
    ("volo", "volo_d1_224", {}),
    ("sequencer", "sequencer2d_s", {}),
    ("nest", "nest_tiny", {}),
    ("gcvit", "gcvit_xxtiny", {}),
    ("davit", "davit_tiny", {}),
    ("focalnet", "focalnet_tiny_srf", {}),
    ("hiera", "hiera_tiny_224", {}),
    ("hieradet_sam2", "sam2_hiera_tiny", {}),
    ("mvitv2", "mvitv2_tiny", {}),
    ("visformer", "visformer_tiny", {}),
    ("swiftformer", "swiftformer_xs", {}),
    ("nextvit", "nextvit_small", {}),
    ("efficientvim", "efficientvim_m1", {}),
    ("shvit", "shvit_s1", {}),
    ("vitamin", "vitamin_small_224", {}),
    ("iformer", "iformer_t", {}),
    ("lowformer", "lowformer_b0", {}),
    ("csatv2", "csatv2", {}),
    ("cpubone", "cpubone_nano", {}),
    ("vgg", "vgg11", {}),
)

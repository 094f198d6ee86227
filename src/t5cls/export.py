"""Faster CPU backends: ONNX export and int8 dynamic quantisation.

``export_onnx`` writes ``model.onnx`` (fp32, dynamic batch and sequence axes) with the model's
``config.json`` and tokenizer next to it, so that ``Classifier(out, backend="onnx")`` loads the
directory on its own. ``quantize_int8`` writes ``model_int8.onnx`` with ONNX Runtime's dynamic
quantisation (int8 weights, activations quantised per batch at run time), which uses the CPU's
int8 dot-product instructions (VNNI / AMX) where it has them.

Why ONNX Runtime for the classifier's int8: ``torch.ao.quantization.quantize_dynamic`` is
deprecated, and on this project's CPU torchao's int8 dynamic linear layers were measured at 1.6x
fp32 against ONNX Runtime's 5x (t5-small FFN shapes, 2 threads).

Label scoring (and reranking) is different: its decoder is the prefix tree of
:mod:`t5cls.scoring`, which runs transformers' modules with a tree mask, and its encoder is the
padding-free one of :mod:`t5cls.packed`. An ONNX export of both ran correctly but was no faster
than fp32 at 4 labels (the exported encoder runs padded). :func:`quantize_linear_int8` instead
swaps the model's ``nn.Linear`` layers for torch's int8 dynamic ones (fbgemm kernels through the
``x86`` engine), which run inside the packed encoder and the tree decoder unchanged: on t5-small
shapes, 64 AG News texts, 2 threads, the packed int8 encoder ran as fast as ONNX Runtime's int8
encoder (0.37 s vs 0.36 s) and LabelScorer at 4 labels 3.3x its fp32 (rough: a shared machine).
"""

from __future__ import annotations

import logging
import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
from transformers import PreTrainedModel

from .convert import check_output_dir, staged_directory
from .devices import cpu_flags
from .errors import InputError, check_bool, check_int
from .loading import inspect_model, load_classifier_model, load_tokenizer, wrong_kind

logger = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
ONNX_INT8_FILE = "model_int8.onnx"
FORMATS = ("onnx",)
DEFAULT_OPSET = 18
# The oldest opset ONNX's version converter (which torch's exporter uses below 18) goes down to.
MIN_OPSET = 7


class _LogitsOnly(torch.nn.Module):
    """``(input_ids, attention_mask) -> logits``: the graph ONNX Runtime runs."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits  # (batch, num_labels)


@contextmanager
def _quiet_exporter():
    """Silence the exporter's and quantiser's internal chatter (not errors) for the duration of a call."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "root")]
    levels = [log.level for log in loggers]
    with warnings.catch_warnings():
        # Harmless by construction: unused axis names, log(0) folded inside a where(), pytree deprecations.
        warnings.filterwarnings("ignore", module=r"(torch\.onnx|torch\.export|onnx\.reference|copyreg)")
        for log in loggers:
            log.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for log, level in zip(loggers, levels):
                log.setLevel(level)


def export_onnx(
    model: str | Path | PreTrainedModel,
    out: str | Path,
    *,
    tokenizer: Any = None,
    int8: bool = False,
    opset: int = DEFAULT_OPSET,
    overwrite: bool = False,
    base: str | os.PathLike | None = None,
) -> Path:
    """Export a sequence classifier to ONNX (``model.onnx``, and ``model_int8.onnx`` with ``int8``).

    Uses ``torch.onnx.export`` (the torch.export-based exporter) with dynamic batch and sequence
    axes on ``input_ids`` and ``attention_mask``; the output is ``logits`` ``(batch, num_labels)``.
    The export runs in fp32 on CPU with eager attention (the SDPA path does not export with
    dynamic shapes); ONNX Runtime fuses the attention itself.

    Args:
        model: a classifier directory (any kind :class:`t5cls.Classifier` takes, a PEFT adapter
            included, merged first) or a loaded transformers sequence-classification model.
        out: output directory; gets the ONNX file(s), ``config.json`` and the tokenizer.
        tokenizer: saved with the export (loaded from ``model`` when it is a directory).
        int8: also write ``model_int8.onnx`` (dynamic int8 quantisation, see :func:`quantize_int8`).
        opset: ONNX opset version.
        overwrite: replace ``out`` if it exists.
        base: for a PEFT adapter directory, its base model (default: the adapter's own).

    Returns:
        ``out`` as a Path.

    Raises:
        FileExistsError: ``out`` is not empty and ``overwrite`` is false.
        FileNotFoundError / InputError: ``model`` is not a classifier directory.

    Example:
        >>> export_onnx("sst2-classifier", "sst2-onnx", int8=True)  # doctest: +SKIP
        >>> Classifier("sst2-onnx", quantize="int8").predict("great")  # doctest: +SKIP
    """
    try:
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401  (the exporter torch.onnx.export(dynamo=True) builds on)
    except ImportError as exc:
        raise ImportError(f"ONNX export needs onnx, onnxscript and onnxruntime: pip install 't5cls[onnx]' ({exc}).") from exc
    from onnx.defs import onnx_opset_version

    latest = onnx_opset_version()  # the newest opset the installed onnx knows
    check_int("opset", opset, minimum=MIN_OPSET, maximum=latest, hint=f"the default is {DEFAULT_OPSET}")
    check_bool("int8", int8)
    out = check_output_dir(out, overwrite=overwrite)  # before the export, which takes a while
    if isinstance(model, (str, os.PathLike)):
        info = inspect_model(model, base=base)
        if not info.is_classifier:
            raise wrong_kind(info, "a T5 classifier (or any sequence classifier) to export")
        tokenizer = tokenizer if tokenizer is not None else load_tokenizer(info, what="export_onnx(model, out, tokenizer=...)")
        model = load_classifier_model(info, dtype=torch.float32)
    elif base is not None:
        raise InputError(f"base={base!r} goes with a PEFT adapter directory, not with a loaded {type(model).__name__}.")
    with staged_directory(out, overwrite=overwrite) as staging:
        _export_graph(model, staging / ONNX_FILE, opset=opset)
        if int8:
            quantize_int8(staging / ONNX_FILE, staging / ONNX_INT8_FILE)
        model.config.save_pretrained(staging)
        if tokenizer is not None:
            tokenizer.save_pretrained(staging)
    return out


def _export_graph(model: torch.nn.Module, path: Path, *, opset: int) -> None:
    # Export a float32 CPU copy only when the model is not one already (a bf16 CUDA model, say).
    parameter = next(model.parameters())
    if parameter.dtype != torch.float32 or parameter.device.type != "cpu":
        import copy

        model = copy.deepcopy(model).to(device="cpu", dtype=torch.float32)
    was_training = model.training
    attn = getattr(model.config, "_attn_implementation", None)
    model.eval()
    if attn not in (None, "eager") and hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")
    try:
        # Example inputs: two rows, one padded, so the mask path is the one traced.
        input_ids = torch.full((2, 8), 5, dtype=torch.long)
        attention_mask = torch.ones_like(input_ids)
        attention_mask[1, 5:] = 0
        batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
        with _quiet_exporter():
            program = torch.onnx.export(
                _LogitsOnly(model).eval(),
                (input_ids, attention_mask),
                input_names=["input_ids", "attention_mask"],
                output_names=["logits"],
                dynamic_shapes={"input_ids": {0: batch, 1: sequence}, "attention_mask": {0: batch, 1: sequence}},
                opset_version=opset,
                dynamo=True,
                verbose=False,
            )
        proto = program.model_proto
        # The exporter records shapes of the weights as value_info too; ONNX Runtime's quantiser
        # rewrites Gemm weights (transposes them) and then fails on those stale shapes.
        initializers = {tensor.name for tensor in proto.graph.initializer}
        kept = [info for info in proto.graph.value_info if info.name not in initializers]
        del proto.graph.value_info[:]
        proto.graph.value_info.extend(kept)
        import onnx

        onnx.save(proto, str(path))
    finally:
        if attn not in (None, "eager") and hasattr(model, "set_attn_implementation"):
            model.set_attn_implementation(attn)
        model.train(was_training)


# The vocabulary projection stays fp32: its int8 rounding moves every label's log-likelihood
# (it is the layer whose outputs are compared), and at a few labels it is a small share of the work.
INT8_KEEP_FP32 = ("lm_head",)


def is_int8(model: torch.nn.Module) -> bool:
    """Whether ``model`` already holds int8 dynamic linear layers (from :func:`quantize_linear_int8`)."""
    return any(isinstance(module, DynamicLinear) for module in model.modules())


def _full_range_activations() -> bool:
    """Whether fbgemm may quantise activations to all 8 bits on this CPU.

    torch's dynamic Linear keeps activations to 7 bits (``reduce_range=True``) because without
    VNNI the int8 dot product adds pairs of products in int16, which 8 bits could overflow.
    AVX512-VNNI accumulates in int32, so there the 8th bit is free precision: on t5-small shapes it
    halved LabelScorer int8's mean log-likelihood change (0.064 -> 0.032, per-channel weights both).
    """
    return "avx512_vnni" in cpu_flags()  # no flags read (not Linux): torch's safe default


class FullRangeDynamicLinear(DynamicLinear):
    """fbgemm's dynamic int8 Linear with activations on all 8 bits (for CPUs that accumulate in int32)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        packed = self._packed_params._packed_params
        return torch.ops.quantized.linear_dynamic(x, packed, reduce_range=False).to(x.dtype)


class TokenScaledDynamicLinear(DynamicLinear):
    """fbgemm's dynamic int8 Linear with one activation scale per token (row) instead of per call.

    fbgemm quantises a call's whole input with one scale, so one token with large activations
    coarsens every other token's rounding. Each row is divided by its largest magnitude before the
    int8 product and the output row multiplied back: the same linear map (``W (x / s) * s = W x``)
    with each token's activations spread over the full 8-bit range, as CTranslate2's per-token int8
    does, on fbgemm's kernels. It costs two passes over the input and one over the output, which
    next to an int8 product is not little, so :func:`quantize_linear_int8` uses it only where
    :data:`TOKEN_SCALED_INPUTS` says the input comes without a per-token norm.
    """

    # torch's default keeps activations to 7 bits, so that CPUs which add int8 products in int16
    # cannot overflow; FullRangeTokenScaledDynamicLinear uses all 8 where VNNI adds them in int32.
    reduce_range = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.abs().amax(dim=-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)  # (..., 1)
        out = torch.ops.quantized.linear_dynamic(x / scale, self._packed_params._packed_params, reduce_range=self.reduce_range)
        bias = self._float_bias()
        if bias is None:
            return out.mul_(scale).to(x.dtype)
        return out.sub_(bias).mul_(scale).add_(bias).to(x.dtype)  # the kernel added the bias to the scaled rows

    def _float_bias(self) -> torch.Tensor | None:
        # ``self.bias()`` unpacks the whole int8 weight to return the bias (1.3 ms a call at t5-small
        # shapes: a quarter of LabelScorer int8's time at 4 labels), so it is read once per packed
        # weight: set_weight_bias and load_state_dict pack anew, and the next call reads it again.
        packed = self._packed_params._packed_params
        kept = self.__dict__.get("_bias_read")  # in __dict__, not a parameter: no state of the module
        if kept is None or kept[0] is not packed:
            bias = self.bias()
            kept = self.__dict__["_bias_read"] = (packed, None if bias is None else bias.detach())
        return kept[1]


class FullRangeTokenScaledDynamicLinear(TokenScaledDynamicLinear):
    """:class:`TokenScaledDynamicLinear` with activations on all 8 bits (for CPUs that accumulate in int32)."""

    reduce_range = False


# Linear layers (by name suffix) whose inputs get one int8 scale per token: in T5 the attention
# output projection (its input, the attention context) and the FFN's output projection (its input,
# the hidden layer after ReLU / gated GELU), the two whose inputs no RMSNorm has put on a per-token
# scale. q, k, v and wi read RMS-normalised tokens, where one scale per call loses little. On a small
# trained seq2seq (benchmarks/int8_agreement.py) this took LabelScorer int8's largest log-likelihood
# change from 0.75 to 0.51 and its top-label agreement from 98.8% to 99.5%; token scales on every
# layer gave 99.5% too, at about twice the extra time.
TOKEN_SCALED_INPUTS = (".o", ".wo")


def quantize_linear_int8(model: torch.nn.Module, *, keep_fp32: tuple[str, ...] = INT8_KEEP_FP32, inplace: bool = False) -> torch.nn.Module:
    """A model whose ``nn.Linear`` layers run int8 dynamic quantisation (torch, CPU).

    Weights become int8 (per output channel, symmetric); activations are quantised at run time (all
    8 bits on CPUs with AVX512-VNNI, 7 elsewhere), with one scale per token for the layers named in
    :data:`TOKEN_SCALED_INPUTS` (:class:`TokenScaledDynamicLinear`) and one per call for the rest,
    and the layers return fp32. Every other
    module (embeddings, layer norms, attention products, the modules named in ``keep_fp32``) stays
    fp32, so the model still runs through :mod:`t5cls.packed` and transformers' own forward.

    Args:
        model: an fp32 model on CPU.
        keep_fp32: names of linear layers to keep in fp32 (default: the vocabulary projection).
        inplace: quantise ``model`` itself instead of a copy.

    Returns:
        The quantised model (in eval mode).

    Raises:
        InputError: a model that is not fp32 on CPU (int8 dynamic kernels are CPU-only).

    Example:
        >>> int8 = quantize_linear_int8(T5ForConditionalGeneration.from_pretrained("t5-small"))  # doctest: +SKIP
    """
    import copy
    import warnings

    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    from .errors import InputError

    parameter = next(model.parameters())
    if parameter.device.type != "cpu" or parameter.dtype != torch.float32:
        raise InputError(
            f"int8 quantisation runs on CPU in fp32; the model is {parameter.dtype} on {parameter.device}. "
            "Load it with device='cpu' and dtype=float32, or drop quantize='int8' on a GPU."
        )
    if is_int8(model):
        return model
    # Per-channel weights: one scale per output row, as ONNX Runtime's and CTranslate2's int8 use.
    names = {name: per_channel_dynamic_qconfig for name, module in model.named_modules() if isinstance(module, torch.nn.Linear) and name not in keep_fp32}
    if not inplace:
        model = copy.deepcopy(model)
    engines = torch.backends.quantized.supported_engines
    previous = torch.backends.quantized.engine
    # x86 (fbgemm's kernels) measured 1.3x onednn's on t5-small shapes; other CPUs keep their default.
    engine = "x86" if "x86" in engines else previous
    full_range = engine == "x86" and _full_range_activations()
    mapping = {torch.nn.Linear: FullRangeDynamicLinear if full_range else DynamicLinear}
    with warnings.catch_warnings():
        # torch.ao's deprecation notice: the API is what runs here, and torchao measured slower.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*(deprecat|migrat|torchao).*")
        torch.backends.quantized.engine = engine
        try:
            quantize_dynamic(model.eval(), names, dtype=torch.qint8, mapping=mapping, inplace=True)
        finally:
            torch.backends.quantized.engine = previous
    token_scaled = FullRangeTokenScaledDynamicLinear if full_range else TokenScaledDynamicLinear
    for name, module in model.named_modules():
        if isinstance(module, DynamicLinear) and name.endswith(TOKEN_SCALED_INPUTS):
            module.__class__ = token_scaled  # the same packed weights; only forward differs
    return model


def quantize_int8(src: str | Path, dst: str | Path) -> Path:
    """Dynamic int8 quantisation of an ONNX model's matmul weights with ONNX Runtime.

    Only ``MatMul`` nodes are quantised (per output channel, signed int8): they hold nearly all the
    compute, while quantising the embedding lookup would cost accuracy for no speed.

    Args:
        src: an fp32 ONNX file (from :func:`export_onnx`).
        dst: where to write the int8 model.

    Returns:
        ``dst`` as a Path.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise FileNotFoundError(f"ONNX file {str(src)!r} does not exist; export the model first (`t5cls export`).")
    with _quiet_exporter():
        quantize_dynamic(
            str(src),
            str(dst),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
        )
    return dst


__all__ = ["export_onnx", "quantize_int8", "quantize_linear_int8", "is_int8", "INT8_KEEP_FP32", "ONNX_FILE", "ONNX_INT8_FILE", "FORMATS"]

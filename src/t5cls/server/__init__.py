"""The HTTP server (``t5cls serve``): the FastAPI app and the micro-batcher that feeds it."""

from __future__ import annotations

from .app import BodySizeLimit, ModelInfo, ServerSettings, create_app, inspect_model_dir, serve

__all__ = ["create_app", "serve", "inspect_model_dir", "ModelInfo", "ServerSettings", "BodySizeLimit"]

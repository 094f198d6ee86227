"""The HTTP server (``t5cls serve``): the FastAPI app, its routes per API family, and the micro-batcher that feeds them."""

from __future__ import annotations

from .app import BodySizeLimit, ModelInfo, ServerSettings, create_app, inspect_model_dir, serve

__all__ = ["create_app", "serve", "inspect_model_dir", "ModelInfo", "ServerSettings", "BodySizeLimit"]

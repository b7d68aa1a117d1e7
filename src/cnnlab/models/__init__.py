"""The model zoo: import the families so their builders register themselves."""

from cnnlab.models import small
from cnnlab.models.registry import create_model, list_models, model_entry, register_model

__all__ = ["create_model", "list_models", "model_entry", "register_model", "small"]

"""Dense heads (MODELS registry): RPNHead."""

from detcli.models.dense_heads.rpn_head import RPNHead

__all__ = ["RPNHead"]

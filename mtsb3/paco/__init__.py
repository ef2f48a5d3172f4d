from mtsb3.paco.paco import W_RESET_METHODS, PaCo

__all__ = ["W_RESET_METHODS", "PaCo"]
